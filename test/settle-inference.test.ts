/**
 * Inference records named by /settle headers (the earlier facilitator's door): taken only when the
 * payment settles, linked to it, and anchored with the event their settlement type calls for.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseEventLogs, toHex, type Hex } from "viem";
import { leafStruct, SETTLEMENT_RELAY_ABI, signTeeRecord, type InferenceRecord } from "@facilitator/inference";
import { postJson } from "@facilitator/server/testing";
import { startFacilitatorWithInference, type InferenceFixture } from "./helpers/facilitator.ts";
import { chainView } from "./helpers/chain.ts";
import { approvePermit2, evmPaymentBody, uptoPayment } from "./helpers/payments.ts";

const OPS_KEY = "operator-metrics-key";
let fx: InferenceFixture;
beforeAll(async () => {
  fx = await startFacilitatorWithInference({ config: { metricsApiKey: OPS_KEY } });
});
afterAll(async () => {
  await fx?.stop();
});

const hash = (): Hex => toHex(crypto.getRandomValues(new Uint8Array(32)));

async function paidSettle(headers: Record<string, string>) {
  const { body } = await evmPaymentBody(fx.world.networks["base-sepolia"]!, 500n);
  const res = await postJson(`${fx.url}/settle`, body, headers);
  return { res, body: await res.json() };
}

/** The /settle headers of a record (TEE fields included when it has them). */
function recordHeaders(r: InferenceRecord): Record<string, string> {
  return {
    "x-input-hash": r.inputHash,
    "x-output-hash": r.outputHash,
    "x-settlement-type": r.settlementType,
    ...(r.settlementType === "settle-metadata"
      ? { "x-settlement-metadata": Buffer.from(JSON.stringify({ modelInfo: r.modelInfo, inputData: r.inputData, outputData: r.outputData })).toString("base64") }
      : {}),
    ...(r.teeId ? { "x-tee-id": r.teeId, "x-tee-timestamp": r.teeTimestamp!, "x-tee-signature": r.teeSignature! } : {}),
  };
}

/** A record signed by the registered TEE (attestation v2: its type and metadata are signed too). */
const signed = (r: Omit<InferenceRecord, "teeId" | "teeTimestamp" | "teeSignature">) => signTeeRecord(fx.tee, r);

/** Headers naming the registered TEE, signed by some other key. */
function forgedTeeHeaders(): Record<string, string> {
  const other = toHex(crypto.getRandomValues(new Uint8Array(32)));
  return recordHeaders(signTeeRecord({ teeId: fx.tee.teeId, privateKey: other }, { inputHash: hash(), outputHash: hash(), settlementType: "settle" }));
}

async function anchored(id: string): Promise<Record<string, any>> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const view = await (await fetch(`${fx.url}/inference/settlements/${id}`)).json();
    if (view.status === "anchored") return view;
    if (view.status === "failed" || Date.now() > deadline) throw new Error(`record ${id}: ${JSON.stringify(view)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function relayEvents(txHash: Hex) {
  const receipt = await chainView(fx.world.networks["base-sepolia"]!).client.getTransactionReceipt({ hash: txHash });
  expect(receipt.status).toBe("success");
  return parseEventLogs({ abi: SETTLEMENT_RELAY_ABI, logs: receipt.logs.filter((l) => l.address.toLowerCase() === fx.relayAddress.toLowerCase()) });
}

describe("/settle with inference headers", () => {
  it("settle: the payment settles, the record is linked to it, and Settlement(input, output) is emitted", async () => {
    const record = signed({ inputHash: hash(), outputHash: hash(), settlementType: "settle" });
    const { inputHash, outputHash } = record;
    const { res, body } = await paidSettle(recordHeaders(record));
    expect(body).toMatchObject({ success: true });
    const id = body.extensions.inferenceSettlement.id;
    expect(res.headers.get("x-inference-settlement-id")).toBe(id);

    const view = await anchored(id);
    expect(view).toMatchObject({ settlementType: "settle", payment: { network: "base-sepolia", transaction: body.transaction } });
    const [event] = await relayEvents(view.transactionHash);
    expect(event).toMatchObject({ eventName: "Settlement", args: { inputHash, outputHash } });
  });

  it("settle-metadata: SettlementWithMetadata carries the model and data", async () => {
    const metadata = { modelInfo: "llama-3.1-8b@tee", inputData: "prompt digest", outputData: "completion digest" };
    const record = signed({ inputHash: hash(), outputHash: hash(), settlementType: "settle-metadata", ...metadata });
    const { inputHash, outputHash } = record;
    const { body } = await paidSettle(recordHeaders(record));
    expect(body.success).toBe(true);
    const view = await anchored(body.extensions.inferenceSettlement.id);
    const [event] = await relayEvents(view.transactionHash);
    expect(event).toMatchObject({ eventName: "SettlementWithMetadata", args: { inputHash, outputHash, ...metadata } });
  });

  it("settle-batch with a TEE signature: anchored in a batch whose root the relay accepts the proof for", async () => {
    const record = signed({ inputHash: hash(), outputHash: hash(), settlementType: "settle-batch" });
    const { body } = await paidSettle(recordHeaders(record));
    expect(body.success).toBe(true);
    const view = await anchored(body.extensions.inferenceSettlement.id);
    const events = await relayEvents(view.transactionHash);
    expect(events[0]).toMatchObject({ eventName: "BatchSettlement", args: { merkleRoot: view.root } });
    const holds = await chainView(fx.world.networks["base-sepolia"]!).client.readContract({
      address: fx.relayAddress,
      abi: SETTLEMENT_RELAY_ABI,
      functionName: "verifyInference",
      args: [view.root, view.proof, leafStruct(record)],
    });
    expect(holds).toBe(true);
  });

  it.each([
    ["a short hash", { "x-input-hash": "0x1234", "x-output-hash": hash() }],
    ["an unknown settlement type", { "x-input-hash": hash(), "x-output-hash": hash(), "x-settlement-type": "settle-twice" }],
    ["a signature the registered TEE did not make", "forged-tee"],
    ["a record without a TEE signature (TEE_KEYS set: signatures required)", { "x-input-hash": hash(), "x-output-hash": hash() }],
  ])("refuses %s before any money moves", async (_name, spec) => {
    const headers: Record<string, string> =
      spec === "forged-tee" ? forgedTeeHeaders() : (spec as Record<string, string>);
    const n = fx.world.networks["base-sepolia"]!;
    const chain = chainView(n);
    const sent = await chain.txCount(n.facilitatorAddress);
    const payeeBefore = await chain.balanceOf(n.payTo);
    const { res, body } = await paidSettle(headers);
    expect(res.status).toBe(200);
    expect(body.success).toBe(false);
    expect(body.errorReason).toMatch(/^invalid_|^unknown_tee|^tee_signature_required/);
    expect(body.transaction).toBe("");
    expect(await chain.txCount(n.facilitatorAddress)).toBe(sent);
    expect(await chain.balanceOf(n.payTo)).toBe(payeeBefore);
  });
});

describe("an inference billed by the token through upto", () => {
  it("the charge the resource server asks settles, and the record names that payment", async () => {
    const n = fx.world.networks["base-sepolia"]!;
    await approvePermit2(n, { address: n.payer.address, key: n.payer.privateKey });
    const { body } = await uptoPayment(n, { key: n.payer.privateKey }, 10_000n, n.facilitatorAddress);
    const record = signed({ inputHash: hash(), outputHash: hash(), settlementType: "settle" });
    const payToBefore = await chainView(n).balanceOf(n.payTo);
    const res = await postJson(`${fx.url}/settle`, body(1_234n), recordHeaders(record));
    const answer = await res.json();
    expect(answer).toMatchObject({ success: true, amount: "1234" });
    expect(await chainView(n).balanceOf(n.payTo)).toBe(payToBefore + 1_234n);
    const view = await anchored(answer.extensions.inferenceSettlement.id);
    expect(view).toMatchObject({ inputHash: record.inputHash, payment: { network: "base-sepolia", transaction: answer.transaction } });
  });
});

describe("/metrics after payments and anchoring", () => {
  it("counts the settled payments and the anchored batches", async () => {
    const text = await (await fetch(`${fx.url}/metrics`, { headers: { authorization: `Bearer ${OPS_KEY}` } })).text();
    const value = (re: RegExp) => Number(re.exec(text)?.[1] ?? "NaN");
    expect(value(/^x402_settle_requests_total\{network="base-sepolia",outcome="success"\} (\d+)/m)).toBeGreaterThanOrEqual(3);
    expect(value(/^x402_batches_anchored_total (\d+)/m)).toBeGreaterThanOrEqual(1);
    expect(value(/^x402_gas_spent_wei_total\{network="base-sepolia",role="settlement"\} (\S+)/m)).toBeGreaterThan(0);
    expect(value(/^x402_gas_spent_wei_total\{network="base-sepolia",role="relayer"\} (\S+)/m)).toBeGreaterThan(0);
    expect(value(/^x402_inference_queue_depth (\d+)/m)).toBe(0);
    const signer = fx.world.networks["base-sepolia"]!.facilitatorAddress;
    expect(value(new RegExp(`^x402_signer_balance_wei\\{[^}]*address="${signer}"[^}]*\\} (\\S+)`, "m"))).toBeGreaterThan(0);
  });

  it("/ready checks the chain, Walrus and the signers' gas money; only the operator's key sees what each check saw", async () => {
    const anonymous = await fetch(`${fx.url}/ready`);
    expect(anonymous.status).toBe(200);
    expect(await anonymous.json()).toEqual({ status: "ready" });
    const res = await fetch(`${fx.url}/ready`, { headers: { authorization: `Bearer ${OPS_KEY}` } });
    const body = await res.json();
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(JSON.stringify(body)).toContain("gas base-sepolia signer");
    expect(JSON.stringify(body)).toContain(fx.world.networks["base-sepolia"]!.facilitatorAddress);
  });
});
