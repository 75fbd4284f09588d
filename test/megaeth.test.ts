/**
 * MegaETH (eip155:4326) with USDm-like ERC-2612 permit payments through the HTTP facilitator: an
 * `@x402/express` resource server (with our PermitExactServerScheme) and an `@x402/fetch` client (with
 * our PermitExactEvmScheme), on a local anvil with the real chain id. The payer holds tokens, no ETH.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeFunctionData, parseAbi, type Address, type Hash, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { x402Client } from "@x402/core/client";
import { HTTPFacilitatorClient } from "@x402/core/server";
import type { PaymentRequirements } from "@x402/core/types";
import { x402ResourceServer } from "@x402/express";
import { decodePaymentRequiredHeader } from "@x402/core/http";
import { decodePaymentResponseHeader, wrapFetchWithPayment } from "@x402/fetch";
import { devKey, DevRole, type EvmWorldNetwork } from "@facilitator/devnet";
import { PermitExactEvmScheme, PermitExactServerScheme, registerPermitScheme, signPermitPayload } from "@facilitator/evm";
import { postJson, type Listening } from "@facilitator/server/testing";
import { startFacilitatorOnWorld, type FacilitatorFixture } from "./helpers/facilitator.ts";
import { chainView } from "./helpers/chain.ts";
import { evmAccepts, startPaidServer } from "./helpers/resource-server.ts";

let fx: FacilitatorFixture;
let n: EvmWorldNetwork;
let server: Listening;
let base: string;

beforeAll(async () => {
  fx = await startFacilitatorOnWorld({ networks: ["megaeth"] });
  n = fx.world.networks["megaeth"]!;
  const resourceServer = new x402ResourceServer(new HTTPFacilitatorClient({ url: fx.url })).register("eip155:4326", new PermitExactServerScheme());
  server = await startPaidServer(
    { "GET /report": { accepts: evmAccepts(n, "1500000000000000000"), description: "a paid report" } },
    resourceServer,
    (app) => app.get("/report", (_req, res) => void res.json({ report: "paid in USDm" })),
  );
  base = server.url;
});

afterAll(async () => {
  await server?.close();
  await fx?.stop();
});

const payer = () => privateKeyToAccount(n.payer.privateKey);
const spender = () => n.facilitatorAddress;

function payingFetch() {
  const client = new x402Client();
  registerPermitScheme(client, { signer: payer(), rpcUrl: n.rpcUrl });
  client.setSpendControls(false); // the local token is not the USDm deployment the client knows
  return wrapFetchWithPayment(fetch, client);
}

describe("@x402/express + @x402/fetch on MegaETH with ERC-2612 permit", () => {
  it("/supported offers the permit kind with the token domain and the spender", async () => {
    const body = await (await fetch(`${fx.url}/supported`)).json();
    expect(body.kinds).toContainEqual({
      x402Version: 2,
      scheme: "exact",
      network: "eip155:4326",
      extra: { name: "MegaUSD", version: "1", assetTransferMethod: "erc2612-permit", spender: spender() },
    });
  });

  it("402 names the spender, then pay, 200 with PAYMENT-RESPONSE; balances moved; the payer never holds ETH", async () => {
    const chain = chainView(n);
    const unpaid = await fetch(`${base}/report`);
    expect(unpaid.status).toBe(402);
    const required = decodePaymentRequiredHeader(unpaid.headers.get("payment-required")!);
    expect(required.accepts[0]).toMatchObject({
      network: "eip155:4326",
      amount: "1500000000000000000",
      extra: { name: "MegaUSD", version: "1", assetTransferMethod: "erc2612-permit", spender: spender() },
    });

    const [payerBefore, payToBefore] = [await chain.balanceOf(n.payer.address), await chain.balanceOf(n.payTo)];
    expect(await chain.ethBalance(n.payer.address)).toBe(0n);
    const res = await payingFetch()(`${base}/report`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ report: "paid in USDm" });
    const settlement = decodePaymentResponseHeader(res.headers.get("payment-response")!);
    expect(settlement).toMatchObject({ success: true, network: "eip155:4326", payer: n.payer.address });
    const receipt = await chain.client.getTransactionReceipt({ hash: settlement.transaction as Hash });
    expect(receipt.status).toBe("success");
    expect(await chain.balanceOf(n.payer.address)).toBe(payerBefore - 1_500_000_000_000_000_000n);
    expect(await chain.balanceOf(n.payTo)).toBe(payToBefore + 1_500_000_000_000_000_000n);
    expect(await chain.ethBalance(n.payer.address)).toBe(0n);
  });
});

describe("the facilitator's HTTP answers for permit payments", () => {
  const post = async (path: "verify" | "settle", body: unknown) => (await postJson(`${fx.url}/${path}`, body)).json();
  const now = () => BigInt(Math.floor(Date.now() / 1000));
  const requirements = (over: Partial<PaymentRequirements> = {}): PaymentRequirements => ({
    scheme: "exact", network: "eip155:4326", amount: "1000", asset: n.asset.address, payTo: n.payTo, maxTimeoutSeconds: 60,
    extra: { name: n.asset.name, version: n.asset.version, assetTransferMethod: "erc2612-permit", spender: spender() },
    ...over,
  });
  const nonceOf = (owner: Address) => chainView(n).client.readContract({ address: n.asset.address, abi: tokenAbi, functionName: "nonces", args: [owner] });
  const body = (payload: object, r = requirements()) => ({ x402Version: 2, paymentPayload: { x402Version: 2, accepted: r, payload }, paymentRequirements: r });
  const sign = async (over: { spender?: Address; deadline?: bigint; nonce?: bigint; value?: bigint; name?: string; asset?: Address; account?: ReturnType<typeof payer> } = {}) => {
    const account = over.account ?? payer();
    return signPermitPayload(account, {
      domain: { name: over.name ?? n.asset.name, version: n.asset.version, chainId: n.chainId, verifyingContract: over.asset ?? n.asset.address },
      spender: over.spender ?? spender(),
      value: over.value ?? 1000n,
      nonce: over.nonce ?? (await nonceOf(account.address)),
      deadline: over.deadline ?? now() + 600n,
    });
  };
  const tokenAbi = parseAbi([
    "function nonces(address) view returns (uint256)",
    "function permit(address owner, address spender, uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s)",
  ]);
  /** Dev account 5 submits a permit signature itself, paying the gas. */
  async function submitPermit(payload: Awaited<ReturnType<typeof sign>>): Promise<void> {
    const p = payload.permit;
    const sig = payload.signature;
    const [r, s, v] = [`0x${sig.slice(2, 66)}`, `0x${sig.slice(66, 130)}`, parseInt(sig.slice(130, 132), 16)] as const;
    const data = encodeFunctionData({ abi: tokenAbi, functionName: "permit", args: [p.owner as Address, p.spender as Address, BigInt(p.value), BigInt(p.deadline), v, r as Hex, s as Hex] });
    const client = chainView(n).client;
    const hash = (await client.request({ method: "eth_sendTransaction" as never, params: [{ from: privateKeyToAccount(devKey(DevRole.thirdParty)).address, to: n.asset.address, data }] as never })) as Hash;
    await client.waitForTransactionReceipt({ hash });
  }

  const rejections: [string, () => Promise<object>, string][] = [
    ["spender is not our signer", async () => body(await sign({ spender: privateKeyToAccount(devKey(6)).address })), "invalid_exact_evm_permit_spender_mismatch"],
    ["deadline passed", async () => body(await sign({ deadline: now() - 5n })), "invalid_exact_evm_permit_deadline"],
    ["nonce already used", async () => {
      const used = await sign({ spender: privateKeyToAccount(devKey(6)).address }); // someone else's permit consumes the nonce
      await submitPermit(used);
      return body(await sign({ nonce: BigInt(used.permit.nonce) }));
    }, "invalid_exact_evm_permit_nonce"],
    ["value lower than required", async () => body(await sign({ value: 999n })), "invalid_exact_evm_payload_authorization_value_mismatch"],
    ["value higher than required", async () => body(await sign({ value: 1001n })), "invalid_exact_evm_payload_authorization_value_mismatch"],
    ["signed for the wrong domain", async () => body(await sign({ name: "USD Coin" })), "invalid_exact_evm_payload_signature"],
    ["requirements with the wrong domain", async () => body(await sign(), requirements({ extra: { name: "USDm", version: "1" } })), "invalid_exact_evm_token_name_mismatch"],
    ["insufficient balance", async () => body(await sign({ account: privateKeyToAccount(devKey(22)) })), "insufficient_funds"],
    ["a token the network does not accept", async () => {
      const asset = "0x00000000000000000000000000000000deadbeef" as Address;
      return body(await sign({ asset, nonce: 0n }), requirements({ asset }));
    }, "asset_not_allowed"],
  ];

  it.each(rejections)("%s: /verify and /settle answer 200 with the reason and send nothing", async (_name, make, reason) => {
    const chain = chainView(n);
    const request = await make();
    const sentBefore = await chain.txCount(spender());
    expect(await post("verify", request)).toMatchObject({ isValid: false, invalidReason: reason });
    expect(await post("settle", request)).toMatchObject({ success: false, errorReason: reason, transaction: "", network: "eip155:4326" });
    expect(await chain.txCount(spender())).toBe(sentBefore);
  });

  it("refuses a permit that a third party submitted before any settle reached us: its nonce is used, nothing moves", async () => {
    const chain = chainView(n);
    const payload = await new PermitExactEvmScheme(payer(), { rpcUrl: n.rpcUrl }).createPaymentPayload(2, requirements());
    await submitPermit(payload.payload as Awaited<ReturnType<typeof sign>>);
    const payToBefore = await chain.balanceOf(n.payTo);
    expect(await post("verify", body(payload.payload))).toMatchObject({ isValid: false, invalidReason: "invalid_exact_evm_permit_nonce" });
    expect(await post("settle", body(payload.payload))).toMatchObject({ success: false, errorReason: "invalid_exact_evm_permit_nonce", transaction: "" });
    expect(await chain.balanceOf(n.payTo)).toBe(payToBefore);
  });

  it("verifies and settles an x402 v1 body (network \"megaeth\", maxAmountRequired) made by the same client scheme", async () => {
    const chain = chainView(n);
    const v1Requirements = {
      scheme: "exact", network: "megaeth", maxAmountRequired: "2500", resource: "http://127.0.0.1/report", description: "report",
      mimeType: "application/json", payTo: n.payTo, maxTimeoutSeconds: 60, asset: n.asset.address,
      extra: { name: n.asset.name, version: n.asset.version, assetTransferMethod: "erc2612-permit", spender: spender() },
    };
    const paymentPayload = await new PermitExactEvmScheme(payer(), { rpcUrl: n.rpcUrl }).createPaymentPayload(1, v1Requirements as never);
    expect(paymentPayload).toMatchObject({ x402Version: 1, scheme: "exact", network: "megaeth" });
    const v1Body = { x402Version: 1, paymentPayload, paymentRequirements: v1Requirements };
    const payToBefore = await chain.balanceOf(n.payTo);
    expect(await post("verify", v1Body)).toMatchObject({ isValid: true, payer: n.payer.address });
    expect(await post("settle", v1Body)).toMatchObject({ success: true, network: "megaeth" });
    expect(await chain.balanceOf(n.payTo)).toBe(payToBefore + 2500n);
  });

  it("settles 20 concurrent /settle calls of one permit once: one success, 19 duplicate_settlement", async () => {
    const chain = chainView(n);
    const request = body(await sign());
    const [payToBefore, sentBefore] = [await chain.balanceOf(n.payTo), await chain.txCount(spender())];
    const answers = await Promise.all(Array.from({ length: 20 }, () => post("settle", request)));
    expect(answers.filter((a) => a.success)).toHaveLength(1);
    expect(answers.filter((a) => !a.success).map((a) => a.errorReason)).toEqual(Array(19).fill("duplicate_settlement"));
    expect(await chain.txCount(spender())).toBe(sentBefore + 2); // one permit, one transferFrom
    expect(await chain.balanceOf(n.payTo)).toBe(payToBefore + 1000n);
  });
});
