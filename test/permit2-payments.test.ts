/**
 * Permit2 and `upto` through our facilitator, paid by the official 2.27 clients: `@x402/express`
 * resource servers and `@x402/fetch` payers on each local EVM chain (base-sepolia, og-evm, megaeth),
 * with Permit2 and the x402 proxies at their canonical addresses.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createWalletClient, encodeFunctionData, erc20Abi, http, maxUint256, parseAbi, type Address, type Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { x402Client } from "@x402/core/client";
import { HTTPFacilitatorClient } from "@x402/core/server";
import { ExactEvmScheme as ExactClient } from "@x402/evm/exact/client";
import { ExactEvmScheme as ExactServer } from "@x402/evm/exact/server";
import { UptoEvmScheme as UptoClient } from "@x402/evm/upto/client";
import { UptoEvmScheme as UptoServer } from "@x402/evm/upto/server";
import { setSettlementOverrides, x402ResourceServer } from "@x402/express";
import { decodePaymentResponseHeader, wrapFetchWithPayment } from "@x402/fetch";
import { deployErc1271Wallet, EVM_WORLD_CHAINS, evmWorldOverrides, localChain, mintTokens, PERMIT2_ADDRESS, type EvmWorldNetwork } from "@facilitator/devnet";
import type { Listening } from "@facilitator/server/testing";
import { startFacilitator, startFacilitatorOnWorld, type FacilitatorFixture } from "./helpers/facilitator.ts";
import { chainView, nodeRpc } from "./helpers/chain.ts";
import { startPaidServer } from "./helpers/resource-server.ts";
import { postForAnswer as postJson } from "./helpers/http.ts";
import { approvePermit2, uptoPayment as signedUpto } from "./helpers/payments.ts";

/**
 * The route's declaration of the extension, as `declareEip2612GasSponsoringExtension()` of
 * `@x402/extensions` writes it (the client signs the EIP-2612 permit only when the route declares it).
 */
const eip2612GasSponsoring = { eip2612GasSponsoring: { info: { description: "EIP-2612 permit for Permit2", version: "1" } } };
/** The same for `declareErc20ApprovalGasSponsoringExtension()`: the client then signs an approve transaction. */
const erc20ApprovalGasSponsoring = { erc20ApprovalGasSponsoring: { info: { description: "signed approve(Permit2) transaction", version: "1" } } };

let fx: FacilitatorFixture;
const servers: Listening[] = [];
const NETWORKS = EVM_WORLD_CHAINS.map((c) => c.network);

beforeAll(async () => {
  fx = await startFacilitatorOnWorld({ networks: NETWORKS });
});
afterAll(async () => {
  for (const s of servers) await s.close();
  await fx?.stop();
});

/** A payer of our own (tokens, no gas money), so each test starts from a known Permit2 allowance. */
async function newPayer(n: EvmWorldNetwork, tokens = 1_000_000n): Promise<{ address: Address; key: Hex }> {
  const key = generatePrivateKey();
  const address = privateKeyToAccount(key).address;
  await mintTokens({ rpcUrl: n.rpcUrl, chainId: n.chainId, deployerKey: fx.world.deployerKey, token: n.asset.address, to: address, amount: tokens });
  return { address, key };
}

const allowanceToPermit2 = (n: EvmWorldNetwork, owner: Address) =>
  chainView(n).client.readContract({ address: n.asset.address, abi: erc20Abi, functionName: "allowance", args: [owner, PERMIT2_ADDRESS] });

/** A resource server charging `amount` on `n` through Permit2 (`exact`), optionally offering EIP-2612 gas sponsoring. */
async function exactPermit2Server(n: EvmWorldNetwork, amount: string, sponsoring: false | Record<string, unknown>): Promise<string> {
  const resourceServer = new x402ResourceServer(new HTTPFacilitatorClient({ url: fx.url })).register(n.caip2 as `${string}:${string}`, new ExactServer());
  const accepts = {
    scheme: "exact",
    network: n.caip2 as `${string}:${string}`,
    payTo: n.payTo,
    price: { amount, asset: n.asset.address, extra: { name: n.asset.name, version: n.asset.version, assetTransferMethod: "permit2" } },
    maxTimeoutSeconds: 60,
  };
  const server = await startPaidServer(
    { "GET /report": { accepts, description: "a paid report", ...(sponsoring ? { extensions: sponsoring } : {}) } },
    resourceServer,
    (app) => app.get("/report", (_req, res) => void res.json({ report: "paid" })),
  );
  servers.push(server);
  return server.url;
}

function payingFetch(n: EvmWorldNetwork, key: Hex, scheme: "exact" | "upto") {
  const client = new x402Client();
  const account = privateKeyToAccount(key);
  // The rpcUrl lets the client read its allowance and nonce for the EIP-2612 extension, as a wallet would.
  client.register(n.caip2 as `${string}:${string}`, scheme === "exact" ? new ExactClient(account, { rpcUrl: n.rpcUrl }) : new UptoClient(account, { rpcUrl: n.rpcUrl }));
  client.setSpendControls(false); // our local tokens are not the default assets the client knows
  return wrapFetchWithPayment(fetch, client);
}

describe("/supported", () => {
  it("lists exact and upto on every EVM network, upto with the facilitator address, and the gas-sponsoring extension", async () => {
    const supported = (await (await fetch(`${fx.url}/supported`)).json()) as { kinds: { x402Version: number; scheme: string; network: string; extra?: Record<string, unknown> }[]; extensions: string[] };
    expect(supported.extensions).toContain("eip2612GasSponsoring");
    for (const network of NETWORKS) {
      const n = fx.world.networks[network]!;
      const upto = supported.kinds.find((k) => k.x402Version === 2 && k.scheme === "upto" && k.network === n.caip2);
      expect(upto?.extra?.facilitatorAddress).toBe(privateKeyToAccount(fx.world.facilitatorKeys[0]!).address);
      expect(supported.kinds.some((k) => k.x402Version === 2 && k.scheme === "exact" && k.network === n.caip2)).toBe(true);
    }
  });
});

describe.each(NETWORKS)("exact through Permit2 on %s", (network) => {
  let n: EvmWorldNetwork;
  beforeAll(() => {
    n = fx.world.networks[network]!;
  });

  it("a payer who never approved Permit2 pays with EIP-2612 gas sponsoring; it never holds gas money", async () => {
    const payer = await newPayer(n);
    const chain = chainView(n);
    expect(await allowanceToPermit2(n, payer.address)).toBe(0n);
    const url = await exactPermit2Server(n, "2500", eip2612GasSponsoring);
    const payToBefore = await chain.balanceOf(n.payTo);

    const res = await payingFetch(n, payer.key, "exact")(`${url}/report`);
    expect(res.status).toBe(200);
    const settlement = decodePaymentResponseHeader(res.headers.get("payment-response")!);
    expect(settlement).toMatchObject({ success: true, network: n.caip2, payer: payer.address });
    expect(await chain.balanceOf(payer.address)).toBe(1_000_000n - 2500n);
    expect(await chain.balanceOf(n.payTo)).toBe(payToBefore + 2500n);
    expect(await chain.ethBalance(payer.address)).toBe(0n);
    const receipt = await chain.client.getTransactionReceipt({ hash: settlement.transaction as Hex });
    expect(receipt.to?.toLowerCase()).toBe("0x402085c248eea27d92e8b30b2c58ed07f9e20001"); // through the exact proxy
  });

  it("a payer who never approved Permit2 pays with ERC-20 approval sponsoring: we fund its approve's gas, once", async () => {
    const payer = await newPayer(n);
    const chain = chainView(n);
    const url = await exactPermit2Server(n, "900", erc20ApprovalGasSponsoring);
    expect(await chain.ethBalance(payer.address)).toBe(0n);
    const res = await payingFetch(n, payer.key, "exact")(`${url}/report`);
    expect(res.status, Buffer.from(res.headers.get("payment-required") ?? "", "base64").toString()).toBe(200);
    expect(await chain.balanceOf(payer.address)).toBe(1_000_000n - 900n);
    expect(await allowanceToPermit2(n, payer.address)).toBeGreaterThan(10n ** 70n); // its own approve(Permit2, max) was mined
    // What it kept of the gas money is what its approve did not burn, under the cap (10^15 wei).
    const left = await chain.ethBalance(payer.address);
    expect(left).toBeLessThan(10n ** 15n);

    // The allowance is in place now: the next payment needs no approval and no gas money.
    const again = await payingFetch(n, payer.key, "exact")(`${url}/report`);
    expect(again.status, Buffer.from(again.headers.get("payment-required") ?? "", "base64").toString()).toBe(200);
    expect(await chain.balanceOf(payer.address)).toBe(1_000_000n - 1800n);
    expect(await chain.ethBalance(payer.address)).toBe(left);
  });

  it("a payer who approved Permit2 earlier pays without any extension", async () => {
    const payer = await newPayer(n);
    await approvePermit2(n, payer);
    const url = await exactPermit2Server(n, "700", false);
    const res = await payingFetch(n, payer.key, "exact")(`${url}/report`);
    expect(res.status).toBe(200);
    expect(await chainView(n).balanceOf(payer.address)).toBe(1_000_000n - 700n);
  });

  it("without an allowance or an extension the payment is refused with permit2_allowance_required, nothing moves", async () => {
    const payer = await newPayer(n);
    const url = await exactPermit2Server(n, "700", false);
    const res = await payingFetch(n, payer.key, "exact")(`${url}/report`);
    expect(res.status).toBe(412); // the official middleware's status for this reason (x402 spec)
    const required = JSON.parse(Buffer.from(res.headers.get("payment-required")!, "base64").toString()) as { error?: string };
    expect(required.error).toContain("permit2_allowance_required");
    expect(await chainView(n).balanceOf(payer.address)).toBe(1_000_000n);
  });
});

/** An official upto payment for our first signer, as `@x402/fetch` would send it. */
const uptoPayment = (n: EvmWorldNetwork, payer: { key: Hex }, max: bigint, extra: Record<string, unknown> = {}) =>
  signedUpto(n, payer, max, privateKeyToAccount(fx.world.facilitatorKeys[0]!).address, extra);

describe("upto: the resource server charges what was used, at most the signed maximum", () => {
  const n = () => fx.world.networks["base-sepolia"]!;

  it("through @x402/express: maximum 1000, the route charges 400, the payee gets exactly 400", async () => {
    const payer = await newPayer(n());
    await approvePermit2(n(), payer);
    const resourceServer = new x402ResourceServer(new HTTPFacilitatorClient({ url: fx.url })).register(n().caip2 as `${string}:${string}`, new UptoServer());
    const accepts = {
      scheme: "upto",
      network: n().caip2 as `${string}:${string}`,
      payTo: n().payTo,
      price: { amount: "1000", asset: n().asset.address, extra: { name: n().asset.name, version: n().asset.version } },
      maxTimeoutSeconds: 60,
    };
    const server = await startPaidServer({ "POST /infer": { accepts, description: "billed by the token" } }, resourceServer, (app) =>
      app.post("/infer", (_req, res) => {
        setSettlementOverrides(res, { amount: "400" }); // 400 tokens used
        res.json({ output: "done" });
      }),
    );
    servers.push(server);
    const chain = chainView(n());
    const payToBefore = await chain.balanceOf(n().payTo);
    const res = await payingFetch(n(), payer.key, "upto")(`${server.url}/infer`, { method: "POST" });
    expect(res.status).toBe(200);
    const settlement = decodePaymentResponseHeader(res.headers.get("payment-response")!) as { success: boolean; amount?: string };
    expect(settlement).toMatchObject({ success: true, amount: "400" });
    expect(await chain.balanceOf(n().payTo)).toBe(payToBefore + 400n);
    expect(await chain.balanceOf(payer.address)).toBe(1_000_000n - 400n);
  });

  it("a charge of 0 succeeds without a transaction, and the payment cannot be charged again", async () => {
    const payer = await newPayer(n());
    await approvePermit2(n(), payer);
    const { body } = await uptoPayment(n(), payer, 1000n);
    const blockBefore = await chainView(n()).blockNumber();
    const settled = await postJson(`${fx.url}/settle`, body(0n));
    expect(settled.body).toMatchObject({ success: true, transaction: "", amount: "0" });
    expect(await chainView(n()).blockNumber()).toBe(blockBefore);
    const again = await postJson(`${fx.url}/settle`, body(500n));
    expect(again.body).toMatchObject({ success: false, errorReason: "payment_request_mismatch" });
    expect(await chainView(n()).balanceOf(payer.address)).toBe(1_000_000n);
  });

  it("a charge above the signed maximum is refused and nothing moves", async () => {
    const payer = await newPayer(n());
    await approvePermit2(n(), payer);
    const { body } = await uptoPayment(n(), payer, 1000n);
    const settled = await postJson(`${fx.url}/settle`, body(1001n));
    expect(settled.body).toMatchObject({ success: false, errorReason: "invalid_upto_evm_payload_settlement_exceeds_amount" });
    expect(await chainView(n()).balanceOf(payer.address)).toBe(1_000_000n);
  });

  it("a signature naming another facilitator address is refused at verify and settle", async () => {
    const payer = await newPayer(n());
    await approvePermit2(n(), payer);
    const stranger = privateKeyToAccount(generatePrivateKey()).address;
    const { body } = await uptoPayment(n(), payer, 1000n, { facilitatorAddress: stranger });
    const verified = await postJson(`${fx.url}/verify`, body(1000n));
    expect(verified.body).toMatchObject({ isValid: false, invalidReason: "upto_facilitator_mismatch" });
    const settled = await postJson(`${fx.url}/settle`, body(300n));
    expect(settled.body).toMatchObject({ success: false, errorReason: "upto_facilitator_mismatch" });
    expect(await chainView(n()).balanceOf(payer.address)).toBe(1_000_000n);
  });

  it("verify checks the signed maximum; concurrent settles of one payment make one transfer", async () => {
    const payer = await newPayer(n());
    await approvePermit2(n(), payer);
    const { body } = await uptoPayment(n(), payer, 1000n);
    expect((await postJson(`${fx.url}/verify`, body(1000n))).body).toMatchObject({ isValid: true, payer: payer.address });
    expect((await postJson(`${fx.url}/verify`, body(999n))).body).toMatchObject({ isValid: false, invalidReason: "permit2_amount_mismatch" });

    const from = await chainView(n()).blockNumber();
    const answers = await Promise.all(Array.from({ length: 8 }, () => postJson(`${fx.url}/settle`, body(640n))));
    const bodies = answers.map((a) => a.body as { success: boolean; errorReason?: string });
    expect(bodies.filter((b) => b.success)).toHaveLength(1);
    for (const b of bodies.filter((b) => !b.success)) expect(["duplicate_settlement", "settlement_pending"]).toContain(b.errorReason);
    const transfers = await chainView(n()).client.getContractEvents({
      address: n().asset.address,
      abi: parseAbi(["event Transfer(address indexed from, address indexed to, uint256 value)"]),
      eventName: "Transfer",
      args: { from: payer.address },
      fromBlock: from,
    });
    expect(transfers.map((t) => t.args.value)).toEqual([640n]);
  });
});

describe("payment-identifier: a payment signed afresh under the same id is never settled twice", () => {
  it("two Permit2 payments of one payer with one id: the first settles, the second is answered from it", async () => {
    const n = fx.world.networks["og-evm"]!;
    const payer = await newPayer(n);
    await approvePermit2(n, payer);
    const id = { "payment-identifier": { info: { required: false, id: "pay_0b9f3c1d2e4a5b6c7d8e9f00" } } };
    const sign = async () => {
      const { paymentPayload, body } = await uptoPayment(n, payer, 500n);
      return { ...body(500n), paymentPayload: { ...paymentPayload, extensions: id } };
    };
    const [first, second] = [await sign(), await sign()];
    expect(first.paymentPayload.payload).not.toEqual(second.paymentPayload.payload); // two signatures, two Permit2 nonces
    const settled = await postJson(`${fx.url}/settle`, first);
    expect(settled.body).toMatchObject({ success: true });
    const again = await postJson(`${fx.url}/settle`, second);
    expect(again.body).toMatchObject({ success: false, errorReason: "duplicate_settlement", transaction: settled.body.transaction });
    expect(await chainView(n).balanceOf(payer.address)).toBe(1_000_000n - 500n);
  });
});

describe("smart wallets pay through Permit2 (ERC-1271)", () => {
  it("a deployed contract wallet that approved Permit2 pays exact and upto; Permit2 asks the wallet, as we do", async () => {
    const n = fx.world.networks["base-sepolia"]!;
    const owner = privateKeyToAccount(generatePrivateKey());
    const target = { rpcUrl: n.rpcUrl, chainId: n.chainId, deployerKey: fx.world.deployerKey };
    const wallet = await deployErc1271Wallet({ ...target, owner: owner.address });
    await mintTokens({ ...target, token: n.asset.address, to: wallet, amount: 10_000n });
    // The owner has the wallet approve Permit2 (its gas money given for that and taken back).
    await nodeRpc(n.rpcUrl, "anvil_setBalance", [owner.address, "0xde0b6b3a7640000"]);
    const ownerWallet = createWalletClient({ account: owner, chain: localChain(n.chainId, n.rpcUrl), transport: http(n.rpcUrl) });
    const approve = encodeFunctionData({ abi: erc20Abi, functionName: "approve", args: [PERMIT2_ADDRESS, maxUint256] });
    const hash = await ownerWallet.writeContract({ address: wallet, abi: parseAbi(["function execute(address target, uint256 value, bytes data) returns (bytes)"]), functionName: "execute", args: [n.asset.address, 0n, approve] });
    await chainView(n).client.waitForTransactionReceipt({ hash });
    await nodeRpc(n.rpcUrl, "anvil_setBalance", [owner.address, "0x0"]);

    // The official client with a signer whose address is the wallet and whose signatures are the owner's.
    const walletSigner = { address: wallet, signTypedData: (args: Parameters<typeof owner.signTypedData>[0]) => owner.signTypedData(args) };
    const url = await exactPermit2Server(n, "1500", false);
    const client = new x402Client();
    client.register(n.caip2 as `${string}:${string}`, new ExactClient(walletSigner as never, { rpcUrl: n.rpcUrl }));
    client.setSpendControls(false);
    const res = await wrapFetchWithPayment(fetch, client)(`${url}/report`);
    expect(res.status).toBe(200);
    expect(decodePaymentResponseHeader(res.headers.get("payment-response")!)).toMatchObject({ success: true, payer: wallet });
    expect(await chainView(n).balanceOf(wallet)).toBe(10_000n - 1500n);

    // A stranger's key cannot speak for the wallet: its payment, claiming to be from the wallet, is refused.
    const signed = (await uptoPayment(n, { key: generatePrivateKey() }, 1n)).body(1n);
    const payload = signed.paymentPayload.payload as { permit2Authorization: Record<string, unknown> };
    const forged = { ...signed, paymentPayload: { ...signed.paymentPayload, payload: { ...payload, permit2Authorization: { ...payload.permit2Authorization, from: wallet } } } };
    expect((await postJson(`${fx.url}/verify`, forged)).body).toMatchObject({ isValid: false, invalidReason: "invalid_permit2_signature" });
  });
});

describe("routes priced the ordinary way (a dollar price, the official default asset table)", () => {
  async function dollarServer(n: EvmWorldNetwork, price: string, extensions?: Record<string, unknown>): Promise<string> {
    const resourceServer = new x402ResourceServer(new HTTPFacilitatorClient({ url: fx.url })).register(n.caip2 as `${string}:${string}`, new ExactServer());
    const accepts = { scheme: "exact", network: n.caip2 as `${string}:${string}`, payTo: n.payTo, price, maxTimeoutSeconds: 60 };
    const server = await startPaidServer({ "GET /report": { accepts, description: "priced in dollars", ...(extensions ? { extensions } : {}) } }, resourceServer, (app) =>
      app.get("/report", (_req, res) => void res.json({ report: "paid" })),
    );
    servers.push(server);
    return server.url;
  }

  it("MegaETH: the table names USDm through Permit2 with EIP-2612 sponsoring; a payer with no gas money pays $0.01", async () => {
    const n = fx.world.networks["megaeth"]!;
    const payer = await newPayer(n, 10n ** 18n);
    const url = await dollarServer(n, "$0.01", eip2612GasSponsoring);
    const required = JSON.parse(Buffer.from((await fetch(`${url}/report`)).headers.get("payment-required")!, "base64").toString());
    expect(required.accepts[0]).toMatchObject({ asset: n.asset.address, amount: (10n ** 16n).toString(), extra: { assetTransferMethod: "permit2" } });
    const res = await payingFetch(n, payer.key, "exact")(`${url}/report`);
    expect(res.status).toBe(200);
    expect(await chainView(n).balanceOf(payer.address)).toBe(10n ** 18n - 10n ** 16n);
    expect(await chainView(n).ethBalance(payer.address)).toBe(0n);
  });

  it("base-sepolia: the table names USDC through EIP-3009; $0.001 is paid", async () => {
    const n = fx.world.networks["base-sepolia"]!;
    const payer = await newPayer(n, 10_000n);
    const url = await dollarServer(n, "$0.001");
    const res = await payingFetch(n, payer.key, "exact")(`${url}/report`);
    expect(res.status).toBe(200);
    expect(await chainView(n).balanceOf(payer.address)).toBe(10_000n - 1_000n);
  });
});

describe("Permit2 payments inherit pending and reconcile from the settlement engine", () => {
  it("an upto settle not mined within the bound answers settlement_pending; the retry collects the same transaction, once", async () => {
    const n = fx.world.networks["megaeth"]!;
    const slow = await startFacilitator({ networks: ["megaeth"], networkOverrides: evmWorldOverrides(fx.world), evmKeys: fx.world.facilitatorKeys, receiptTimeoutMs: 500 });
    try {
      const payer = await newPayer(n, 10n ** 18n);
      await approvePermit2(n, payer);
      const { body } = await uptoPayment(n, payer, 5000n);
      await nodeRpc(n.rpcUrl, "evm_setAutomine", [false]);
      let pending: Record<string, unknown>;
      try {
        pending = (await postJson(`${slow.url}/settle`, body(3000n))).body;
      } finally {
        await nodeRpc(n.rpcUrl, "evm_setAutomine", [true]);
        await nodeRpc(n.rpcUrl, "evm_mine", []);
      }
      expect(pending).toMatchObject({ success: false, errorReason: "settlement_pending" });
      const collected = (await postJson(`${slow.url}/settle`, body(3000n))).body;
      expect(collected).toMatchObject({ success: true, transaction: pending.transaction, amount: "3000" });
      expect((await postJson(`${slow.url}/settle`, body(3000n))).body).toMatchObject({ success: false, errorReason: "duplicate_settlement" });
      expect(await chainView(n).balanceOf(payer.address)).toBe(10n ** 18n - 3000n);
    } finally {
      await slow.stop();
    }
  });
});
