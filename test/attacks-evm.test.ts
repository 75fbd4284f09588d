/**
 * Hostile payers and callers on EVM, each attack performed over HTTP against our facilitator on the
 * local world (real anvil chains, real tokens), as an outsider would try it. Every test asserts what
 * moved: token balances, the facilitator's gas money and its transaction count, before and after.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeFunctionData, parseAbi, parseGwei, toHex, type Address, type Hash, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { deployContract, devKey, DevRole, deployErc1271Wallet, mintTokens, type EvmWorldNetwork } from "@facilitator/devnet";
import { signEip3009Payload, signPermitPayload, transferWithAuthorizationCall } from "@facilitator/evm";
import { listen, postJson } from "@facilitator/server/testing";
import { evmWorldOverrides } from "@facilitator/devnet";
import { startFacilitator, startFacilitatorOnWorld, type FacilitatorFixture, type RunningFacilitator } from "./helpers/facilitator.ts";
import { chainView, nodeRpc } from "./helpers/chain.ts";

let fx: FacilitatorFixture;
let base: EvmWorldNetwork;
let mega: EvmWorldNetwork;

beforeAll(async () => {
  fx = await startFacilitatorOnWorld({ networks: ["base-sepolia", "megaeth"] });
  base = fx.world.networks["base-sepolia"]!;
  mega = fx.world.networks["megaeth"]!;
});
afterAll(async () => {
  await fx?.stop();
});

const erc20 = parseAbi([
  "function approve(address spender, uint256 value) returns (bool)",
  "function transfer(address to, uint256 value) returns (bool)",
  "function allowance(address owner, address spender) view returns (uint256)",
  "function nonces(address owner) view returns (uint256)",
]);
const wallet = parseAbi(["function execute(address target, uint256 value, bytes data) returns (bytes)"]);
const GARBAGE_SIGNATURE = `0x${"11".repeat(65)}` as Hex;
const attacker = privateKeyToAccount(devKey(DevRole.thirdParty)).address;
/** An infinite loop (JUMPDEST PUSH1 0 JUMP): the "token" a gas burner points `asset` at. */
const LOOP_CODE = "0x5b600056";

const rpc = (n: EvmWorldNetwork, method: string, params: unknown[] = []) => nodeRpc(n.rpcUrl, method, params);

async function post(path: "/verify" | "/settle", body: unknown, url = fx.url): Promise<Record<string, unknown>> {
  const res = await postJson(`${url}${path}`, body);
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

/** A v2 body as an attacker writes it: any requirements, any payload. */
function v2(n: EvmWorldNetwork, payload: unknown, over: { asset?: string; payTo?: string; amount?: string } = {}) {
  const requirements = {
    scheme: "exact", network: n.caip2, amount: over.amount ?? "1000", asset: over.asset ?? n.asset.address, payTo: over.payTo ?? n.payTo,
    maxTimeoutSeconds: 60, extra: { name: n.asset.name, version: n.asset.version },
  };
  return { x402Version: 2, paymentPayload: { x402Version: 2, accepted: requirements, payload }, paymentRequirements: requirements };
}

const domainOf = (n: EvmWorldNetwork, verifyingContract: Address = n.asset.address) =>
  ({ name: n.asset.name, version: n.asset.version, chainId: n.chainId, verifyingContract });
const now = () => BigInt(Math.floor(Date.now() / 1000));

/** Everything that could move: token balances of the named accounts, the facilitator signers' ETH and transaction counts. */
async function snapshot(n: EvmWorldNetwork, accounts: Address[]) {
  const chain = chainView(n);
  const signers = fx.world.facilitatorKeys.map((k) => privateKeyToAccount(k).address);
  return {
    tokens: await Promise.all(accounts.map((a) => chain.balanceOf(a))),
    gasMoney: await Promise.all(signers.map((a) => chain.ethBalance(a))),
    sent: await Promise.all(signers.map((a) => chain.txCount(a))),
  };
}

/** A fresh account holding `tokens` of the network's asset and some ETH (so it can approve and move funds itself). */
async function fundedOwner(n: EvmWorldNetwork, index: number, tokens: bigint) {
  const account = privateKeyToAccount(devKey(index));
  await mintTokens({ rpcUrl: n.rpcUrl, chainId: n.chainId, deployerKey: fx.world.deployerKey, token: n.asset.address, to: account.address, amount: tokens });
  await rpc(n, "anvil_setBalance", [account.address, toHex(10n ** 20n)]);
  return account;
}

/** Sends a call from `from` (impersonated), ahead of the facilitator's transactions in the next block. */
async function sendAs(n: EvmWorldNetwork, from: Address, to: Address, data: Hex): Promise<Hash> {
  await rpc(n, "anvil_impersonateAccount", [from]);
  const tx = { from, to, data, gas: toHex(300_000n), maxPriorityFeePerGas: toHex(parseGwei("50")), maxFeePerGas: toHex(parseGwei("200")) };
  return (await rpc(n, "eth_sendTransaction", [tx])) as Hash;
}

/**
 * Waits until the facilitator's signers have `count` transactions in the pool, not mined (automine off).
 * Polls every 50 ms: a tighter loop starves the other suites' local nodes of CPU.
 */
async function waitForPool(n: EvmWorldNetwork, count: number): Promise<void> {
  const signers = fx.world.facilitatorKeys.map((k) => privateKeyToAccount(k).address);
  const unmined = (a: Address) => Promise.all([rpc(n, "eth_getTransactionCount", [a, "pending"]), rpc(n, "eth_getTransactionCount", [a, "latest"])]).then(([p, l]) => Number(p) - Number(l));
  while ((await Promise.all(signers.map(unmined))).reduce((x, y) => x + y, 0) < count) await new Promise((r) => setTimeout(r, 50));
}

async function mined(n: EvmWorldNetwork, hash: Hash) {
  return chainView(n).client.waitForTransactionReceipt({ hash });
}

describe("1. a permit with a garbage signature from an owner with code and an allowance in place", () => {
  it("an EIP-7702-delegated owner: verify and settle refuse the signature, nothing moves", async () => {
    const owner = await fundedOwner(mega, 40, 10n ** 21n);
    await mined(mega, await sendAs(mega, owner.address, mega.asset.address, encodeFunctionData({ abi: erc20, functionName: "approve", args: [mega.facilitatorAddress, 10n ** 21n] })));
    // The delegation designator 0xef0100 || delegate: the account now has code, as after a 7702 authorisation.
    await rpc(mega, "anvil_setCode", [owner.address, `0xef0100${mega.asset.address.slice(2)}`]);
    const nonce = (await chainView(mega).client.readContract({ address: mega.asset.address, abi: erc20, functionName: "nonces", args: [owner.address] })) as bigint;
    const payload = { signature: GARBAGE_SIGNATURE, permit: { owner: owner.address, spender: mega.facilitatorAddress, value: "1000", nonce: nonce.toString(), deadline: (now() + 600n).toString() } };
    const body = v2(mega, payload, { payTo: attacker });
    const before = await snapshot(mega, [owner.address, attacker]);

    expect(await post("/verify", body)).toMatchObject({ isValid: false, invalidReason: "invalid_exact_evm_payload_signature" });
    expect(await post("/settle", body)).toMatchObject({ success: false, errorReason: "invalid_exact_evm_payload_signature", transaction: "" });
    // Each new nonce is a new ledger key: the drain tried them one after another.
    for (const next of [nonce + 1n, nonce + 2n]) {
      const again = v2(mega, { ...payload, permit: { ...payload.permit, nonce: next.toString() } }, { payTo: attacker });
      expect(await post("/settle", again)).toMatchObject({ success: false, errorReason: "invalid_exact_evm_payload_signature" });
    }
    expect(await snapshot(mega, [owner.address, attacker])).toEqual(before);
  });

  it("a smart-wallet owner (ERC-1271) that approved us: its isValidSignature refuses, nothing moves", async () => {
    const walletOwner = await fundedOwner(mega, 41, 0n);
    const smart = await deployErc1271Wallet({ rpcUrl: mega.rpcUrl, chainId: mega.chainId, deployerKey: fx.world.deployerKey, owner: walletOwner.address });
    await mintTokens({ rpcUrl: mega.rpcUrl, chainId: mega.chainId, deployerKey: fx.world.deployerKey, token: mega.asset.address, to: smart, amount: 10n ** 21n });
    const approve = encodeFunctionData({ abi: erc20, functionName: "approve", args: [mega.facilitatorAddress, 10n ** 21n] });
    await mined(mega, await sendAs(mega, walletOwner.address, smart, encodeFunctionData({ abi: wallet, functionName: "execute", args: [mega.asset.address, 0n, approve] })));
    const body = v2(mega, { signature: GARBAGE_SIGNATURE, permit: { owner: smart, spender: mega.facilitatorAddress, value: "1000", nonce: "0", deadline: (now() + 600n).toString() } }, { payTo: attacker });
    const before = await snapshot(mega, [smart, attacker]);
    expect(await post("/verify", body)).toMatchObject({ isValid: false, invalidReason: "invalid_exact_evm_payload_signature" });
    expect(await post("/settle", body)).toMatchObject({ success: false, errorReason: "invalid_exact_evm_payload_signature" });
    expect(await snapshot(mega, [smart, attacker])).toEqual(before);
  });

  it("a code-less owner that approved us: a permit it signed is still sent, so the token checks it", async () => {
    const owner = await fundedOwner(mega, 42, 10n ** 21n);
    await mined(mega, await sendAs(mega, owner.address, mega.asset.address, encodeFunctionData({ abi: erc20, functionName: "approve", args: [mega.facilitatorAddress, 10n ** 21n] })));
    const garbage = v2(mega, { signature: GARBAGE_SIGNATURE, permit: { owner: owner.address, spender: mega.facilitatorAddress, value: "1000", nonce: "0", deadline: (now() + 600n).toString() } }, { payTo: attacker });
    const before = await snapshot(mega, [owner.address, attacker]);
    expect(await post("/settle", garbage)).toMatchObject({ success: false, errorReason: "invalid_exact_evm_payload_signature" });
    expect(await snapshot(mega, [owner.address, attacker])).toEqual(before);
  });
});

describe("2. a failed permit payment redirected to another payee", () => {
  it("after the permit was mined and the transfer failed, only the first request's payee can be paid", async () => {
    const owner = await fundedOwner(mega, 43, 5000n);
    const signed = await signPermitPayload(owner, { domain: domainOf(mega), spender: mega.facilitatorAddress, value: 5000n, nonce: 0n, deadline: now() + 600n });
    const honest = v2(mega, signed, { amount: "5000" });

    // The payer's balance moves in the block that mines our permit and transfer: the permit passes, the transfer reverts.
    await rpc(mega, "evm_setAutomine", [false]);
    let first: Record<string, unknown>;
    try {
      const settling = post("/settle", honest);
      await waitForPool(mega, 2);
      await sendAs(mega, owner.address, mega.asset.address, encodeFunctionData({ abi: erc20, functionName: "transfer", args: [devKeyAddress(44), 5000n] }));
      await rpc(mega, "evm_mine");
      first = await settling;
    } finally {
      await rpc(mega, "evm_setAutomine", [true]);
    }
    expect(first).toMatchObject({ success: false, errorReason: "invalid_exact_evm_transaction_failed" });
    const allowance = await chainView(mega).client.readContract({ address: mega.asset.address, abi: erc20, functionName: "allowance", args: [owner.address, mega.facilitatorAddress] });
    expect(allowance).toBe(5000n); // the permit is public on chain and its allowance is left over

    // The owner's funds come back; a stranger rebuilds the payment (the permit calldata is public) with its own payee.
    await mintTokens({ rpcUrl: mega.rpcUrl, chainId: mega.chainId, deployerKey: fx.world.deployerKey, token: mega.asset.address, to: owner.address, amount: 5000n });
    const before = await snapshot(mega, [owner.address, attacker, mega.payTo]);
    const redirected = v2(mega, signed, { amount: "5000", payTo: attacker });
    expect(await post("/verify", redirected)).toMatchObject({ isValid: false });
    expect(await post("/settle", redirected)).toMatchObject({ success: false, errorReason: "payment_request_mismatch", transaction: "" });
    // Concurrent redirects change nothing either.
    const many = await Promise.all(Array.from({ length: 5 }, () => post("/settle", redirected)));
    for (const answer of many) expect(answer).toMatchObject({ success: false, errorReason: "payment_request_mismatch" });
    expect(await snapshot(mega, [owner.address, attacker, mega.payTo])).toEqual(before);

    // The honest retry pays the payee it named, with the allowance its permit left (no second permit).
    const retried = await post("/settle", honest);
    expect(retried).toMatchObject({ success: true });
    const chain = chainView(mega);
    expect(await chain.balanceOf(mega.payTo)).toBe(before.tokens[2]! + 5000n);
    expect(await chain.balanceOf(attacker)).toBe(before.tokens[1]);
    expect(await post("/settle", honest)).toMatchObject({ success: false, errorReason: "duplicate_settlement" });
  });
});

describe("4. gas burned for anyone", () => {
  it("a loop contract as the asset, amount 0, from a key with no ETH and no tokens: refused before anything is signed", async () => {
    const loop = "0x00000000000000000000000000000000000100bb" as Address;
    await rpc(base, "anvil_setCode", [loop, LOOP_CODE]);
    await rpc(mega, "anvil_setCode", [loop, LOOP_CODE]);
    const burner = privateKeyToAccount(devKey(45));
    const before = [await snapshot(base, [burner.address]), await snapshot(mega, [burner.address])];
    for (let i = 0; i < 3; i++) {
      const onBase = await signEip3009Payload(burner, { domain: domainOf(base, loop), to: burner.address, value: 0n });
      expect(await post("/settle", v2(base, onBase, { asset: loop, amount: "0", payTo: burner.address }))).toMatchObject({ success: false, errorReason: "asset_not_allowed" });
      const onMega = await signPermitPayload(burner, { domain: domainOf(mega, loop), spender: mega.facilitatorAddress, value: 0n, nonce: BigInt(i), deadline: now() + 600n });
      expect(await post("/settle", v2(mega, onMega, { asset: loop, amount: "0", payTo: burner.address }))).toMatchObject({ success: false, errorReason: "asset_not_allowed" });
    }
    // Amount 0 of the real asset: a transfer that moves nothing but our gas.
    const zero = await signEip3009Payload(burner, { domain: domainOf(base), to: burner.address, value: 0n });
    expect(await post("/settle", v2(base, zero, { amount: "0", payTo: burner.address }))).toMatchObject({ success: false, errorReason: "amount_not_positive" });
    expect([await snapshot(base, [burner.address]), await snapshot(mega, [burner.address])]).toEqual(before);

    const metrics = await (await fetch(`${fx.url}/metrics`)).text();
    expect(metrics).toMatch(/x402_settle_requests_total\{network="base-sepolia",outcome="asset_not_allowed"\} [1-9]/);
    expect(metrics).toMatch(/x402_settle_requests_total\{network="base-sepolia",outcome="amount_not_positive"\} [1-9]/);
  });

  it("a settlement needing more gas than the cap, or a chain asking more per gas than the cap, is refused before signing", async () => {
    const capped = async (config: Parameters<typeof startFacilitator>[0]): Promise<RunningFacilitator> =>
      startFacilitator({ networks: ["base-sepolia"], networkOverrides: evmWorldOverrides(fx.world), evmKeys: fx.world.facilitatorKeys, ...config });
    const payer = privateKeyToAccount(base.payer.privateKey);
    for (const [config, reason] of [
      [{ settleMaxGas: 25_000n }, "invalid_exact_evm_gas_limit_exceeded"],
      [{ settleMaxFeePerGasWei: 1n }, "invalid_exact_evm_fee_cap_exceeded"],
    ] as const) {
      const other = await capped(config);
      try {
        const body = v2(base, await signEip3009Payload(payer, { domain: domainOf(base), to: base.payTo, value: 1000n }));
        const before = await snapshot(base, [payer.address, base.payTo]);
        expect(await post("/settle", body, other.url)).toMatchObject({ success: false, errorReason: reason, transaction: "" });
        expect(await snapshot(base, [payer.address, base.payTo])).toEqual(before);
        // Nothing was claimed for good: the same payment settles where the caps allow it.
        expect(await post("/settle", body)).toMatchObject({ success: true });
      } finally {
        await other.stop();
      }
    }
  });
});

describe("8. a stranger's garbage signature does not block the payer's payment", () => {
  it("permit: a garbage request with the owner's current nonce, before and alongside the honest one", async () => {
    const owner = await fundedOwner(mega, 46, 10n ** 20n);
    const deadline = now() + 600n;
    const garbage = v2(mega, { signature: GARBAGE_SIGNATURE, permit: { owner: owner.address, spender: mega.facilitatorAddress, value: "1000", nonce: "0", deadline: deadline.toString() } }, { payTo: attacker });
    expect(await post("/settle", garbage)).toMatchObject({ success: false, errorReason: "invalid_exact_evm_payload_signature" });
    const honest = v2(mega, await signPermitPayload(owner, { domain: domainOf(mega), spender: mega.facilitatorAddress, value: 1000n, nonce: 0n, deadline }));
    const [, paid] = await Promise.all([post("/settle", garbage), post("/settle", honest)]);
    expect(paid).toMatchObject({ success: true });
  });

  it("EIP-3009: garbage requests racing the payer's authorization never take its nonce", async () => {
    const payer = privateKeyToAccount(base.payer.privateKey);
    const signed = await signEip3009Payload(payer, { domain: domainOf(base), to: base.payTo, value: 1000n });
    const garbage = v2(base, { ...signed, signature: GARBAGE_SIGNATURE });
    const payToBefore = await chainView(base).balanceOf(base.payTo);
    const answers = await Promise.all([post("/settle", garbage), post("/settle", garbage), post("/settle", v2(base, signed)), post("/settle", garbage)]);
    expect(answers[2]).toMatchObject({ success: true });
    for (const i of [0, 1, 3]) expect(answers[i]).toMatchObject({ success: false, errorReason: "invalid_exact_evm_payload_signature" });
    expect(await chainView(base).balanceOf(base.payTo)).toBe(payToBefore + 1000n);
  });
});

describe("a payment answered settlement_pending cannot be redirected either", () => {
  it("a retry naming another payee is refused; the first payee's retry collects the one success", async () => {
    const slow = await startFacilitator({ networks: ["megaeth"], networkOverrides: evmWorldOverrides(fx.world), evmKeys: fx.world.facilitatorKeys, receiptTimeoutMs: 300 });
    const owner = await fundedOwner(mega, 47, 10n ** 20n);
    const signed = await signPermitPayload(owner, { domain: domainOf(mega), spender: mega.facilitatorAddress, value: 2000n, nonce: 0n, deadline: now() + 600n });
    const honest = v2(mega, signed, { amount: "2000" });
    try {
      await rpc(mega, "evm_setAutomine", [false]);
      let pending: Record<string, unknown>;
      try {
        pending = await post("/settle", honest, slow.url);
      } finally {
        await rpc(mega, "evm_setAutomine", [true]);
      }
      expect(pending).toMatchObject({ success: false, errorReason: "settlement_pending" });
      await rpc(mega, "evm_mine");
      const before = await snapshot(mega, [attacker]);
      expect(await post("/settle", v2(mega, signed, { amount: "2000", payTo: attacker }), slow.url)).toMatchObject({ success: false, errorReason: "payment_request_mismatch" });
      expect(await post("/settle", v2(mega, signed, { amount: "1999" }), slow.url)).toMatchObject({ success: false });
      expect(await snapshot(mega, [attacker])).toEqual(before);
      expect(await post("/settle", honest, slow.url)).toMatchObject({ success: true, transaction: pending.transaction });
    } finally {
      await slow.stop();
    }
  });
});

describe("a contract wallet that passes every simulation and reverts on chain", () => {
  it("costs the facilitator one reverted transaction, counted in the gas metric; then the wallet is refused for the cool-off", async () => {
    const fickle = await deployContract({ rpcUrl: base.rpcUrl, chainId: base.chainId, deployerKey: fx.world.deployerKey, artifact: "FickleWallet" });
    await mintTokens({ rpcUrl: base.rpcUrl, chainId: base.chainId, deployerKey: fx.world.deployerKey, token: base.asset.address, to: fickle, amount: 10_000n });
    const pay = async () => {
      const signed = await signEip3009Payload(privateKeyToAccount(devKey(48)), { domain: domainOf(base), to: base.payTo, value: 1000n, from: fickle });
      return v2(base, { ...signed, signature: `0x${"22".repeat(70)}` }); // not 65 bytes: the token asks the wallet (ERC-1271)
    };
    const gasMetric = async () => Number(/x402_gas_spent_wei_total\{network="base-sepolia",role="settlement"\} (\d+(?:\.\d+)?(?:e\+\d+)?)/.exec(await (await fetch(`${fx.url}/metrics`)).text())?.[1] ?? 0);
    const [sentBefore, gasBefore] = [await snapshot(base, [fickle]), await gasMetric()];

    const first = await pay();
    expect(await post("/verify", first)).toMatchObject({ isValid: true }); // the wallet lies to every simulation
    expect(await post("/settle", first)).toMatchObject({ success: false, errorReason: "invalid_exact_evm_transaction_failed" });
    expect((await snapshot(base, [fickle])).sent.reduce((a, b) => a + b, 0)).toBe(sentBefore.sent.reduce((a, b) => a + b, 0) + 1);
    expect(await gasMetric()).toBeGreaterThan(gasBefore); // reverted gas is counted too

    const afterFirst = await snapshot(base, [fickle]);
    for (let i = 0; i < 3; i++) {
      const again = await pay();
      expect(await post("/verify", again)).toMatchObject({ isValid: false, invalidReason: "invalid_exact_evm_payer_reverted_recently" });
      expect(await post("/settle", again)).toMatchObject({ success: false, errorReason: "invalid_exact_evm_payer_reverted_recently", transaction: "" });
    }
    expect(await snapshot(base, [fickle])).toEqual(afterFirst);
  });
});

describe("a stranger cannot lock a contract wallet out, nor strand its pending payment", () => {
  it("a front-run payment of an honest ERC-1271 wallet marks nothing, and its earlier pending payment still gets its success", async () => {
    const slow = await startFacilitator({ networks: ["base-sepolia"], networkOverrides: evmWorldOverrides(fx.world), evmKeys: fx.world.facilitatorKeys, receiptTimeoutMs: 1500 });
    const owner = privateKeyToAccount(devKey(49));
    const wallet = await deployErc1271Wallet({ rpcUrl: base.rpcUrl, chainId: base.chainId, deployerKey: fx.world.deployerKey, owner: owner.address });
    await mintTokens({ rpcUrl: base.rpcUrl, chainId: base.chainId, deployerKey: fx.world.deployerKey, token: base.asset.address, to: wallet, amount: 10_000n });
    const pay = () => signEip3009Payload(owner, { domain: domainOf(base), to: base.payTo, value: 1000n, from: wallet });
    const payToBefore = await chainView(base).balanceOf(base.payTo);
    const [a, b] = [await pay(), await pay()];
    let pendingA: Record<string, unknown>;
    let answerB: Record<string, unknown>;
    await rpc(base, "evm_setAutomine", [false]);
    try {
      pendingA = await post("/settle", v2(base, a), slow.url); // not mined within the bound: pending
      const settlingB = post("/settle", v2(base, b), slow.url);
      await waitForPool(base, 2);
      // A stranger submits B's public authorization first (higher tip): our B transaction reverts.
      const call = transferWithAuthorizationCall({ asset: base.asset.address, authorization: { ...b.authorization, value: 1000n, validAfter: BigInt(b.authorization.validAfter), validBefore: BigInt(b.authorization.validBefore), nonce: b.authorization.nonce as Hex }, signature: b.signature } as never);
      await sendAs(base, attacker, call.to, call.data);
      await rpc(base, "evm_mine");
      answerB = await settlingB;
    } finally {
      await rpc(base, "evm_setAutomine", [true]);
    }
    try {
      expect(pendingA).toMatchObject({ success: false, errorReason: "settlement_pending" });
      expect(answerB).toMatchObject({ success: false, errorReason: "invalid_exact_evm_transaction_failed" });
      // The wallet is not cooling off: the revert was the front-runner's doing, and the chain says so.
      expect(await post("/verify", v2(base, a), slow.url)).toMatchObject({ isValid: true }); // the clients verify before they retry
      expect(await post("/settle", v2(base, a), slow.url)).toMatchObject({ success: true, transaction: pendingA.transaction });
      const c = await pay();
      expect(await post("/verify", v2(base, c), slow.url)).toMatchObject({ isValid: true });
      expect(await chainView(base).balanceOf(base.payTo)).toBe(payToBefore + 2000n); // A by us, B by the stranger
    } finally {
      await slow.stop();
    }
  });
});

describe("another tenant cannot take a pending payment's one success answer", () => {
  it("with API keys, a payment is bound to the key that first asked: a rebuilt request under another key is refused", async () => {
    const keys = { a: "tenant-a-key-0001", b: "tenant-b-key-0002" };
    const tenants = await startFacilitator({ networks: ["base-sepolia"], networkOverrides: evmWorldOverrides(fx.world), evmKeys: fx.world.facilitatorKeys, apiKeys: [keys.a, keys.b], receiptTimeoutMs: 300 });
    const as = async (key: string, path: "/verify" | "/settle", body: unknown) => {
      const res = await postJson(`${tenants.url}${path}`, body, { authorization: `Bearer ${key}` });
      return (await res.json()) as Record<string, unknown>;
    };
    try {
      const payment = v2(base, await signEip3009Payload(privateKeyToAccount(base.payer.privateKey), { domain: domainOf(base), to: base.payTo, value: 1000n }));
      await rpc(base, "evm_setAutomine", [false]);
      let pending: Record<string, unknown>;
      try {
        pending = await as(keys.a, "/settle", payment);
      } finally {
        await rpc(base, "evm_setAutomine", [true]);
      }
      expect(pending).toMatchObject({ success: false, errorReason: "settlement_pending" });
      await rpc(base, "evm_mine");
      // Tenant B rebuilds the request from the public mempool.
      expect(await as(keys.b, "/settle", payment)).toMatchObject({ success: false, errorReason: "payment_request_mismatch", transaction: "" });
      expect(await as(keys.b, "/verify", payment)).toMatchObject({ isValid: false });
      expect(await as(keys.a, "/settle", payment)).toMatchObject({ success: true, transaction: pending.transaction });
    } finally {
      await tenants.stop();
    }
  });
});

describe("answers quote no secret of the RPC", () => {
  it("a node that echoes its URL's key and host in errors: the answer carries neither", async () => {
    const node = await listen((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c)).on("end", () => {
        const calls = [JSON.parse(body)].flat() as { id: number }[];
        const answer = calls.map(({ id }) => ({ jsonrpc: "2.0", id, error: { code: -32000, message: `unknown project at http://${req.headers.host}${req.url}` } }));
        res.setHeader("content-type", "application/json").end(JSON.stringify(Array.isArray(JSON.parse(body)) ? answer : answer[0]));
      });
    });
    const rpcUrl = `${node.url}/v2/SECRET-KEY-1234567`;
    const leaky = await startFacilitator({ networks: ["base-sepolia"], networkOverrides: [{ ...evmWorldOverrides(fx.world)[0]!, rpcUrl }], evmKeys: fx.world.facilitatorKeys });
    try {
      const body = v2(base, await signEip3009Payload(privateKeyToAccount(base.payer.privateKey), { domain: domainOf(base), to: base.payTo, value: 1000n }));
      for (const path of ["/verify", "/settle"] as const) {
        const answer = JSON.stringify(await post(path, body, leaky.url));
        expect(answer).not.toContain("SECRET-KEY-1234567");
        expect(answer).not.toContain("127.0.0.1");
      }
    } finally {
      await leaky.stop();
      await node.close();
    }
  });
});

function devKeyAddress(index: number): Address {
  return privateKeyToAccount(devKey(index)).address;
}
