import { beforeAll, describe, expect, it } from "vitest";
import { Reason, type PaymentRequest } from "@facilitator/core";
import { toHex } from "viem";
import { createEvmExactMechanism, type EvmExactMechanism } from "./mechanism.ts";
import { signEip3009Payload } from "./eip3009-client.ts";
import {
  ACCEPTED_ASSET_WITHOUT_CODE,
  now,
  rpcRecorder,
  startChainWithMechanism,
  startTestChain,
  stranger,
  unfunded,
  UNLISTED_ASSET,
  type TempLedger,
  type TestChain,
} from "./testing/index.ts";

let chain: TestChain;
let mechanism: EvmExactMechanism;
let store: TempLedger;

beforeAll(async () => {
  const fx = await startChainWithMechanism(startTestChain);
  ({ chain, store, mechanism } = fx);
  return fx.stop;
});

/** An authorization the payer signed and a third party already submitted on chain. */
async function alreadyUsed(): Promise<PaymentRequest> {
  const request = await chain.pay();
  await chain.client.waitForTransactionReceipt({ hash: await chain.submitElsewhere(request) });
  return request;
}

const rejections: [string, () => Promise<PaymentRequest>, string][] = [
  ["wrong recipient", async () => chain.request((await chain.pay({ to: stranger.address })).payload), Reason.recipientMismatch],
  ["expired", () => chain.pay({ validBefore: now() - 1n }), Reason.validBefore],
  ["expiring within 6 s", () => chain.pay({ validBefore: now() + 3n }), Reason.validBefore],
  ["not yet valid", () => chain.pay({ validAfter: now() + 120n }), Reason.validAfter],
  ["amount lower than required", async () => chain.request((await chain.pay({ value: 999n })).payload, { amount: 1000n }), Reason.valueMismatch],
  ["amount higher than required", async () => chain.request((await chain.pay({ value: 1001n })).payload, { amount: 1000n }), Reason.valueMismatch],
  ["signature by someone else", async () => {
    const forged = await signEip3009Payload(stranger, { domain: chain.domain, to: chain.payTo, value: 1000n, from: chain.payer.address });
    return chain.request(forged);
  }, Reason.signature],
  ["signed for another domain name", () => chain.pay({ domain: { ...chain.domain, name: "USD Coin" } }), Reason.signature],
  ["signed for another domain version", () => chain.pay({ domain: { ...chain.domain, version: "1" } }), Reason.signature],
  ["requirements naming another domain name", () => chain.pay({ requirements: { extra: { name: "USD Coin", version: "2" } } }), Reason.tokenNameMismatch],
  ["requirements naming another domain version", () => chain.pay({ requirements: { extra: { name: "USDC", version: "1" } } }), Reason.tokenVersionMismatch],
  ["requirements without the domain", () => chain.pay({ requirements: { extra: {} } }), Reason.invalidRequirements],
  ["insufficient balance", () => chain.pay({ account: unfunded }), Reason.insufficientFunds],
  ["nonce already used", alreadyUsed, Reason.nonceAlreadyUsed],
  ["asset without code", async () => {
    const asset = ACCEPTED_ASSET_WITHOUT_CODE;
    const payload = await signEip3009Payload(chain.payer, { domain: { ...chain.domain, verifyingContract: asset }, to: chain.payTo, value: 1000n });
    return chain.request(payload, { asset });
  }, Reason.assetNotDeployed],
  ["an asset the network does not accept", async () => {
    const payload = await signEip3009Payload(chain.payer, { domain: { ...chain.domain, verifyingContract: UNLISTED_ASSET }, to: chain.payTo, value: 1000n });
    return chain.request(payload, { asset: UNLISTED_ASSET });
  }, Reason.assetNotAllowed],
  ["amount zero", async () => chain.request((await chain.pay({ value: 0n })).payload, { amount: 0n }), Reason.amountNotPositive],
  ["malformed payload", async () => chain.request({ signature: "0x12", authorization: { from: chain.payer.address } }), Reason.invalidPayload],
];

describe("exact EVM (EIP-3009) rejections", () => {
  it.each(rejections)("%s: verify and settle both refuse, nothing is sent or recorded", async (_label, make, reason) => {
    const request = await make();
    const sentBefore = await chain.minedCount();
    const verified = await mechanism.verify(request);
    expect(verified).toMatchObject({ isValid: false, reason });
    expect((verified as { message: string }).message).toBeTruthy();
    const settled = await mechanism.settle(request);
    expect(settled).toMatchObject({ success: false, reason, transaction: "" });
    expect(await chain.minedCount()).toBe(sentBefore);
    expect(await store.ledger.countUnconfirmed()).toBe(0);
    const a = (request.payload as { authorization?: { from?: string; nonce?: string } }).authorization;
    if (a?.nonce) {
      const key = `evm:${chain.network.chainId}:${request.requirements.asset.toLowerCase()}:${a.from!.toLowerCase()}:${a.nonce.toLowerCase()}`;
      expect(await store.ledger.get(key)).toBeUndefined(); // released or never claimed: the payer may still pay with it
    }
  });

  it("reports a simulation revert with the token's reason", async () => {
    // validAfter passes our clock check but not the token's strict `block.timestamp > validAfter`.
    const block = await chain.client.getBlock();
    const request = await chain.pay({ validAfter: block.timestamp + 30n });
    const shifted = createEvmExactMechanism({
      networks: [chain.network], signers: [chain.facilitatorKey], ledger: store.ledger,
      now: () => Number(block.timestamp + 60n) * 1000,
    });
    const verified = await shifted.verify(request);
    expect(verified).toMatchObject({ isValid: false, reason: Reason.evmSimulationFailed });
    expect((verified as { message: string }).message).toContain("authorization is not yet valid");
  });

  it("rejects a network or scheme it does not serve", async () => {
    const request = await chain.pay();
    expect(await mechanism.verify({ ...request, scheme: "upto" })).toMatchObject({ isValid: false, reason: Reason.unsupportedScheme });
    const elsewhere = { ...request, network: { ...chain.network, caip2: "eip155:1", name: "mainnet" }, networkId: "eip155:1" };
    expect(await mechanism.settle(elsewhere)).toMatchObject({ success: false, reason: Reason.invalidNetwork, transaction: "" });
  });

  it("makes no chain read when a pure rule fails, one round trip otherwise, and only the simulation once the token is known", async () => {
    const recorder = await rpcRecorder(chain.anvil.rpcUrl);
    try {
      const observed = createEvmExactMechanism({
        networks: [{ ...chain.network, rpcUrl: recorder.url }], signers: [chain.facilitatorKey], ledger: store.ledger,
      });
      await observed.verify(await chain.pay({ validBefore: now() - 1n }));
      expect(recorder.requests).toEqual([]);
      const verified = await observed.verify(await chain.pay());
      expect(verified).toMatchObject({ isValid: true, payer: chain.payer.address });
      expect(recorder.requests).toHaveLength(1);
      // A passing simulation proves the balance and the unused nonce; they are read only to explain a failure.
      expect(recorder.requests[0]!.sort()).toEqual(["eth_call", "eth_getCode"]);
      await observed.verify(await chain.pay());
      expect(recorder.requests).toHaveLength(2);
      expect(recorder.requests[1]).toEqual(["eth_call"]);
      // A failing one gathers every read in one more round trip, to name the reason.
      expect(await observed.verify(await chain.pay({ account: unfunded }))).toMatchObject({ isValid: false, reason: Reason.insufficientFunds });
      expect(recorder.requests).toHaveLength(4);
      expect(recorder.requests[3]!.sort()).toEqual(["eth_call", "eth_call", "eth_call", "eth_getCode", "eth_getCode"]);

    } finally {
      await recorder.close();
    }
  });

  it("verifies a valid payment without moving anything", async () => {
    const request = await chain.pay({ nonce: toHex(777n, { size: 32 }) });
    const before = await chain.balanceOf(chain.payer.address);
    expect(await mechanism.verify(request)).toEqual({ isValid: true, payer: chain.payer.address });
    expect(await chain.balanceOf(chain.payer.address)).toBe(before);
  });
});
