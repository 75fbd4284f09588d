/**
 * Hostile callers against inference anchoring (issue 11, item 3), each attack performed over HTTP
 * against our facilitator on real components: anvil with the SettlementRelay, the local Walrus
 * service, the batch worker. Every refusal is checked for what did not move: the payer's and payee's
 * tokens, the settlement signers' and the relayer's gas money and transaction counts, the inference
 * queue, and the relay's events.
 *
 * The main facilitator is configured like `pnpm start`'s world: a registered TEE (TEE_KEYS, so TEE
 * signatures are required by default), an inference key for the grid router, /settle open to all.
 * Two more facilitators on the same chain cover the other deployments: inference keys without TEE
 * keys (behind API_KEYS, reached with the official HTTPFacilitatorClient), and TEE keys with
 * REQUIRE_TEE_SIGNATURE=false.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAbiItem, toHex, type Address, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { HTTPFacilitatorClient } from "@x402/core/server";
import { devKey, DevRole, evmWorldOverrides, waitFor, type EvmWorldNetwork } from "@facilitator/devnet";
import { leafStruct, loadBatchDump, recordId, SETTLEMENT_RELAY_ABI, signTeeRecord, type InferenceRecord } from "@facilitator/inference";
import { postJson } from "@facilitator/server/testing";
import { startFacilitator, startFacilitatorWithInference, type InferenceFixture, type RunningFacilitator } from "./helpers/facilitator.ts";
import { chainView } from "./helpers/chain.ts";
import { evmPaymentBody } from "./helpers/payments.ts";

let fx: InferenceFixture;
let n: EvmWorldNetwork;

beforeAll(async () => {
  fx = await startFacilitatorWithInference();
  n = fx.world.networks["base-sepolia"]!;
});
afterAll(async () => {
  await fx?.stop();
});

const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const hash = (): Hex => toHex(crypto.getRandomValues(new Uint8Array(32)));
const relayer = privateKeyToAccount(devKey(DevRole.relayer)).address;
const METADATA_EVENT = parseAbiItem("event SettlementWithMetadata(bytes32 indexed inputHash, bytes32 indexed outputHash, string modelInfo, string inputData, string outputData)");
const SETTLEMENT_EVENT = parseAbiItem("event Settlement(bytes32 indexed inputHash, bytes32 indexed outputHash)");

/** The same signature spelled with v 0/1 (a recovery id) instead of 27/28. */
const vRaw = (sig: Hex): Hex => `${sig.slice(0, 130)}0${parseInt(sig.slice(130), 16) - 27}` as Hex;
/** The malleable twin: s -> n - s, v flipped. Recovers the same key; OpenZeppelin's ECDSA refuses it. */
function highS(sig: Hex): Hex {
  const s = BigInt(`0x${sig.slice(66, 130)}`);
  const v = parseInt(sig.slice(130), 16);
  return `${sig.slice(0, 66)}${(N - s).toString(16).padStart(64, "0")}${(v === 27 ? 28 : 27).toString(16)}` as Hex;
}

type Unsigned = Omit<InferenceRecord, "teeId" | "teeTimestamp" | "teeSignature">;
/** A record as the registered TEE signs it (attestation v2). */
const genuine = (r: Unsigned) => signTeeRecord(fx.tee, r);

/** The /settle headers carrying a record. */
function recordHeaders(r: Partial<InferenceRecord>): Record<string, string> {
  return {
    "x-input-hash": r.inputHash!,
    "x-output-hash": r.outputHash!,
    ...(r.settlementType ? { "x-settlement-type": r.settlementType } : {}),
    ...(r.modelInfo !== undefined
      ? { "x-settlement-metadata": Buffer.from(JSON.stringify({ modelInfo: r.modelInfo, inputData: r.inputData, outputData: r.outputData })).toString("base64") }
      : {}),
    ...(r.teeId ? { "x-tee-id": r.teeId } : {}),
    ...(r.teeTimestamp ? { "x-tee-timestamp": r.teeTimestamp } : {}),
    ...(r.teeSignature ? { "x-tee-signature": r.teeSignature } : {}),
  };
}

/** A v2 payment of `amount` from the payer to `payTo`, signed by the payer, and its body. */
async function payment(over: { amount?: bigint; payTo?: Address } = {}) {
  const { body } = await evmPaymentBody(n, over.amount ?? 500n, { payTo: over.payTo });
  return { paymentPayload: body.paymentPayload, requirements: body.paymentRequirements, body };
}

async function settle(headers: Record<string, string>, over: { amount?: bigint; payTo?: Address; url?: string } = {}) {
  const { body } = await payment(over);
  const res = await postJson(`${over.url ?? fx.url}/settle`, body, headers);
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, any>;
}

async function door(body: unknown, opts: { key?: string; url?: string } = {}) {
  const res = await postJson(`${opts.url ?? fx.url}/inference/settlements`, body, { authorization: `Bearer ${opts.key ?? fx.apiKey}` });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

const view = async (id: string, url = fx.url) => (await fetch(`${url}/inference/settlements/${id}`)).json() as Promise<Record<string, any>>;
const anchored = (id: string) => waitFor(async () => ((await view(id)).status === "anchored" ? view(id) : undefined), `record ${id} anchored`);

/** The queue has nothing in flight: gas and transaction counts are stable while an attack runs. */
async function idle(services = fx.services) {
  await waitFor(async () => {
    const { records } = await services.inference.service.queue.stats();
    return records.queued === 0 && records.batched === 0;
  }, "inference queue idle");
}

/** Everything that could move: tokens of payer and payee, the signers' and relayer's ETH and transactions, the queue's records. */
async function snapshot(signers: Address[] = fx.world.facilitatorKeys.map((k) => privateKeyToAccount(k).address), services = fx.services) {
  const chain = chainView(n);
  const accounts = [...signers, relayer];
  const { records } = await services.inference.service.queue.stats();
  return {
    tokens: await Promise.all([n.payer.address, n.payTo].map((a) => chain.balanceOf(a))),
    gasMoney: await Promise.all(accounts.map((a) => chain.ethBalance(a))),
    sent: await Promise.all(accounts.map((a) => chain.txCount(a))),
    records: Object.values(records).reduce((a, b) => a + b, 0),
  };
}

/** A /settle answer that refuses, before anything is broadcast, with a reason string and a message. */
function expectRefused(body: Record<string, any>, reason: string) {
  expect(body).toMatchObject({ success: false, errorReason: reason, transaction: "" });
  expect(String(body.errorMessage).length).toBeGreaterThan(20);
  expect(body.extensions?.inferenceSettlement).toBeUndefined();
}

/** Relay events naming these hashes. */
async function relayEvents(event: typeof SETTLEMENT_EVENT | typeof METADATA_EVENT, inputHash: Hex, outputHash: Hex) {
  return chainView(n).client.getLogs({ address: fx.relayAddress, event, args: { inputHash, outputHash } as never, fromBlock: 0n });
}

describe("anonymous records in /settle headers (TEE_KEYS set, /settle open)", () => {
  it.each([
    ["a zero-amount self-payment", { amount: 0n, self: true }],
    ["a self-payment", { amount: 1n, self: true }],
    ["a zero-amount payment to the payee", { amount: 0n, self: false }],
    ["an ordinary payment", { amount: 500n, self: false }],
  ])("an unsigned record riding on %s is refused before any money or gas moves, and nothing is anchored", async (_name, p) => {
    await idle();
    const before = await snapshot();
    const record = { inputHash: hash(), outputHash: hash(), settlementType: "settle-metadata" as const, modelInfo: "attacker", inputData: "a", outputData: "b" };
    const body = await settle(recordHeaders(record), { amount: p.amount, payTo: p.self ? n.payer.address : n.payTo });
    expectRefused(body, "tee_signature_required");
    expect(await snapshot()).toEqual(before);
    expect(await relayEvents(METADATA_EVENT, record.inputHash, record.outputHash)).toEqual([]);
  });

  it("a record naming an unknown TEE, signed by the attacker's own key, is refused: unknown_tee", async () => {
    await idle();
    const before = await snapshot();
    const forged = signTeeRecord({ teeId: hash(), privateKey: hash() }, { inputHash: hash(), outputHash: hash(), settlementType: "settle" });
    expectRefused(await settle(recordHeaders(forged), { amount: 0n, payTo: n.payer.address }), "unknown_tee");
    expect(await snapshot()).toEqual(before);
  });

  it("a record naming the registered TEE but signed by another key is refused: invalid_tee_signature", async () => {
    await idle();
    const before = await snapshot();
    const forged = signTeeRecord({ teeId: fx.tee.teeId, privateKey: hash() }, { inputHash: hash(), outputHash: hash(), settlementType: "settle" });
    expectRefused(await settle(recordHeaders(forged), { amount: 0n, payTo: n.payer.address }), "invalid_tee_signature");
    expect(await snapshot()).toEqual(before);
  });
});

describe("an unsigned record naming the registered teeId", () => {
  const unsigned = () => ({ inputHash: hash(), outputHash: hash(), settlementType: "settle" as const, teeId: fx.tee.teeId, teeTimestamp: "1700000000" });

  it("is refused in /settle headers, before any money moves", async () => {
    await idle();
    const before = await snapshot();
    const record = unsigned();
    expectRefused(await settle(recordHeaders(record)), "tee_signature_required");
    expect(await snapshot()).toEqual(before);
    expect(await relayEvents(SETTLEMENT_EVENT, record.inputHash, record.outputHash)).toEqual([]);
  });

  it("is refused at the door even with the inference key, and stores nothing", async () => {
    await idle();
    const before = await snapshot();
    const { status, body } = await door(unsigned());
    expect(status).toBe(400);
    expect(body).toMatchObject({ error: "tee_signature_required" });
    expect(await snapshot()).toEqual(before);
  });
});

describe("a genuine TEE signature re-used for what the TEE did not sign", () => {
  it("a public batch attestation re-anchored as settle-metadata or settle, with the attacker's metadata, is refused everywhere", async () => {
    // The grid router anchors a genuine record; its signature is then public (status API, Walrus dump).
    const original = genuine({ inputHash: hash(), outputHash: hash(), settlementType: "settle-batch" });
    const { body: accepted } = await door(original);
    const published = await anchored(accepted.id);
    expect(published.teeSignature).toBe(original.teeSignature);

    await idle();
    const before = await snapshot();
    const stolen = { inputHash: published.inputHash, outputHash: published.outputHash, teeId: published.teeId, teeTimestamp: published.teeTimestamp, teeSignature: published.teeSignature };
    const attacks = [
      { ...stolen, settlementType: "settle-metadata", modelInfo: "attacker-model", inputData: "what the attacker says was asked", outputData: "what the attacker says was answered" },
      { ...stolen, settlementType: "settle-metadata" },
      { ...stolen, settlementType: "settle" },
    ];
    for (const attack of attacks) {
      expectRefused(await settle(recordHeaders(attack as Partial<InferenceRecord>), { amount: 0n, payTo: n.payer.address }), "invalid_tee_signature");
      expectRefused(await settle(recordHeaders(attack as Partial<InferenceRecord>)), "invalid_tee_signature");
      const { status, body } = await door(attack);
      expect(status).toBe(400);
      expect(body).toMatchObject({ error: "invalid_tee_signature" });
    }
    expect(await snapshot()).toEqual(before);
    expect(await relayEvents(METADATA_EVENT, original.inputHash, original.outputHash)).toEqual([]);
    expect(await relayEvents(SETTLEMENT_EVENT, original.inputHash, original.outputHash)).toEqual([]);
  });

  it("a genuine settle-metadata attestation with its metadata changed is refused; the genuine one anchors once, as signed", async () => {
    const metadata = { modelInfo: "llama-3.1-8b@tee", inputData: "prompt digest", outputData: "completion digest" };
    const original = genuine({ inputHash: hash(), outputHash: hash(), settlementType: "settle-metadata", ...metadata });
    await anchored((await door(original)).body.id);

    await idle();
    const before = await snapshot();
    for (const change of [{ outputData: "a different answer" }, { modelInfo: "another-model" }, { inputData: "" }]) {
      expectRefused(await settle(recordHeaders({ ...original, ...change })), "invalid_tee_signature");
      expect((await door({ ...original, ...change })).body).toMatchObject({ error: "invalid_tee_signature" });
    }
    expect(await snapshot()).toEqual(before);
    const events = await relayEvents(METADATA_EVENT, original.inputHash, original.outputHash);
    expect(events).toHaveLength(1);
    expect(events[0]!.args).toMatchObject(metadata);
  });
});

describe("one attestation, one id, anchored once", () => {
  it("the v 0/1 spelling of a signature gets the same id (door and /settle), is stored as v 27/28 and anchored once", async () => {
    const record = genuine({ inputHash: hash(), outputHash: hash(), settlementType: "settle" });
    const raw = { ...record, teeSignature: vRaw(record.teeSignature) };
    const id = recordId(record);

    const first = await door(raw);
    expect(first).toMatchObject({ status: 202, body: { id, duplicate: false } });
    expect((await view(id)).teeSignature).toBe(record.teeSignature);
    expect((await door(record)).body).toMatchObject({ id, duplicate: true });
    // The same attestation paid for through /settle: the payment settles (the record is proven), the id is the same.
    const paid = await settle(recordHeaders(raw));
    expect(paid).toMatchObject({ success: true, extensions: { inferenceSettlement: { id } } });
    await anchored(id);
    expect(await relayEvents(SETTLEMENT_EVENT, record.inputHash, record.outputHash)).toHaveLength(1);

    // After anchoring, both spellings are still the one record: no second anchoring, no relayer gas.
    await idle();
    const relayerSent = await chainView(n).txCount(relayer);
    expect((await door(raw)).body).toMatchObject({ id, duplicate: true, status: "anchored" });
    expect((await door({ records: [record, raw] })).body.results).toEqual([
      { id, status: "anchored", duplicate: true },
      { id, status: "anchored", duplicate: true },
    ]);
    await new Promise((r) => setTimeout(r, 1_000)); // several batch timeouts: a second anchoring would happen now
    expect(await chainView(n).txCount(relayer)).toBe(relayerSent);
    expect(await relayEvents(SETTLEMENT_EVENT, record.inputHash, record.outputHash)).toHaveLength(1);

    // What is stored is the form the relay's verifyTeeSignature accepts (the v 0/1 form it refuses).
    const verify = (r: InferenceRecord) =>
      chainView(n).client.readContract({ address: fx.relayAddress, abi: SETTLEMENT_RELAY_ABI, functionName: "verifyTeeSignature", args: [fx.tee.address, leafStruct(r)] });
    expect(await verify({ ...record, teeSignature: (await view(id)).teeSignature })).toBe(true);
    expect(await verify(raw)).toBe(false);
  });

  it("a batch record in both spellings lands in one leaf of one batch", async () => {
    const record = genuine({ inputHash: hash(), outputHash: hash(), settlementType: "settle-batch" });
    const { body } = await door({ records: [{ ...record, teeSignature: vRaw(record.teeSignature) }, record] });
    expect(body).toMatchObject({ accepted: 2 });
    expect(body.results[0].id).toBe(body.results[1].id);
    const v = await anchored(body.results[0].id);
    expect(v.teeSignature).toBe(record.teeSignature);
    const { dump } = loadBatchDump(new Uint8Array(await (await fetch(`${fx.walrus.aggregatorUrl}/v1/blobs/${v.walrusBlobId}`)).arrayBuffer()));
    expect(dump.tree.values.filter((x) => x.value[1] === record.inputHash)).toHaveLength(1);
    expect(dump.recordIds.filter((x) => x === v.id)).toHaveLength(1);
  });

  it("a high-s signature is refused, not repaired: at the door and in /settle headers, nothing moves", async () => {
    const record = genuine({ inputHash: hash(), outputHash: hash(), settlementType: "settle-batch" });
    const twin = { ...record, teeSignature: highS(record.teeSignature) };
    await idle();
    const before = await snapshot();
    const { status, body } = await door(twin);
    expect(status).toBe(400);
    expect(body).toMatchObject({ error: "invalid_tee_signature", message: expect.stringMatching(/high s/) });
    expectRefused(await settle(recordHeaders(twin), { amount: 0n, payTo: n.payer.address }), "invalid_tee_signature");
    expectRefused(await settle(recordHeaders(twin)), "invalid_tee_signature");
    expect(await snapshot()).toEqual(before);
    expect((await view(recordId(record))).error).toBe("not_found");
  });
});

describe("a deployment without TEE keys: the inference key is the proof (API_KEYS and INFERENCE_API_KEYS both in use)", () => {
  const PAYMENT_KEY = "resource-server-payment-key";
  const INFERENCE_KEY = "resource-server-inference-key";
  const signerKey = devKey(8); // its own settlement signer, so its nonces never meet the main facilitator's
  const signer = privateKeyToAccount(signerKey).address;
  let keyed: RunningFacilitator; // no relay configured: records are queued, not anchored, so the queue's total is what to watch
  /** The record the next settle carries: a resource server's createAuthHeaders reads it per request. */
  let nextRecord: Record<string, string> = {};

  beforeAll(async () => {
    keyed = await startFacilitator({
      networks: ["base-sepolia"],
      networkOverrides: evmWorldOverrides(fx.world),
      evmKeys: [signerKey],
      apiKeys: [PAYMENT_KEY],
      inferenceApiKeys: [INFERENCE_KEY],
      teeKeys: {},
    });
  });
  afterAll(async () => {
    await keyed?.stop();
  });

  /** The official client, sending per path what README shows: the payment key, and on settle the inference key beside it. */
  const client = (inferenceAuthorization?: string) =>
    new HTTPFacilitatorClient({
      url: keyed.url,
      createAuthHeaders: async () => ({
        verify: { Authorization: `Bearer ${PAYMENT_KEY}` },
        settle: { Authorization: `Bearer ${PAYMENT_KEY}`, ...(inferenceAuthorization ? { "X-Inference-Authorization": inferenceAuthorization } : {}), ...nextRecord },
        supported: { Authorization: `Bearer ${PAYMENT_KEY}` },
      }),
    });
  const settleThrough = async (c: HTTPFacilitatorClient, record: Partial<InferenceRecord>) => {
    const p = await payment();
    nextRecord = recordHeaders(record);
    try {
      return (await c.settle(p.paymentPayload as never, p.requirements as never)) as Record<string, any>;
    } finally {
      nextRecord = {};
    }
  };

  it("the official HTTPFacilitatorClient with X-Inference-Authorization on settle: the payment settles and the unsigned record is queued, linked to it", async () => {
    const record = { inputHash: hash(), outputHash: hash(), settlementType: "settle" as const };
    const answer = await settleThrough(client(`Bearer ${INFERENCE_KEY}`), record);
    expect(answer).toMatchObject({ success: true, extensions: { inferenceSettlement: { id: recordId(record), status: "queued" } } });
    expect(await view(recordId(record), keyed.url)).toMatchObject({ status: "queued", payment: { network: "base-sepolia", transaction: answer.transaction } });
  });

  it.each([
    ["only the payment key", undefined, /inference API key/],
    ["a wrong inference key", "Bearer not-the-inference-key", /X-Inference-Authorization does not carry a valid inference API key/],
    ["the payment key as the inference key", `Bearer ${PAYMENT_KEY}`, /X-Inference-Authorization/],
  ])("a record sent with %s is refused before any money or gas moves", async (_name, inferenceAuthorization, message) => {
    const before = await snapshot([signer], keyed.services);
    const record = { inputHash: hash(), outputHash: hash(), settlementType: "settle" as const };
    const answer = await settleThrough(client(inferenceAuthorization), record);
    expectRefused(answer, "inference_unauthenticated");
    expect(answer.errorMessage).toMatch(message);
    expect(await snapshot([signer], keyed.services)).toEqual(before);
    expect((await view(recordId(record), keyed.url)).error).toBe("not_found");
  });

  it("a record signed by a TEE nobody registered proves nothing without the key", async () => {
    const before = await snapshot([signer], keyed.services);
    const forged = signTeeRecord({ teeId: hash(), privateKey: hash() }, { inputHash: hash(), outputHash: hash(), settlementType: "settle" });
    expectRefused(await settleThrough(client(), forged), "inference_unauthenticated");
    expect(await snapshot([signer], keyed.services)).toEqual(before);
  });

  it("the payment key alone opens /settle, never the inference door", async () => {
    expect((await door({ inputHash: hash(), outputHash: hash() }, { url: keyed.url, key: PAYMENT_KEY })).status).toBe(401);
    expect((await door({ inputHash: hash(), outputHash: hash() }, { url: keyed.url, key: INFERENCE_KEY })).status).toBe(202);
  });
});

describe("TEE keys with REQUIRE_TEE_SIGNATURE=false: unsigned records only from key holders, never in a registered TEE's name", () => {
  const INFERENCE_KEY = "relaxed-inference-key";
  const signerKey = devKey(9);
  const signer = privateKeyToAccount(signerKey).address;
  let relaxed: RunningFacilitator; // no relay configured either

  beforeAll(async () => {
    relaxed = await startFacilitator({
      networks: ["base-sepolia"],
      networkOverrides: evmWorldOverrides(fx.world),
      evmKeys: [signerKey],
      inferenceApiKeys: [INFERENCE_KEY],
      teeKeys: { [fx.tee.teeId]: fx.tee.address },
      requireTeeSignature: false,
    });
  });
  afterAll(async () => {
    await relaxed?.stop();
  });

  it("an anonymous unsigned record in /settle headers is refused before any money moves; with the key (Authorization) it is queued", async () => {
    const before = await snapshot([signer], relaxed.services);
    const record = { inputHash: hash(), outputHash: hash(), settlementType: "settle" as const };
    expectRefused(await settle(recordHeaders(record), { url: relaxed.url, amount: 0n, payTo: n.payer.address }), "inference_unauthenticated");
    expect(await snapshot([signer], relaxed.services)).toEqual(before);
    const paid = await settle({ ...recordHeaders(record), authorization: `Bearer ${INFERENCE_KEY}` }, { url: relaxed.url });
    expect(paid).toMatchObject({ success: true, extensions: { inferenceSettlement: { id: recordId(record) } } });
  });

  it("an unsigned record naming the registered TEE is refused even from the key holder", async () => {
    const before = await snapshot([signer], relaxed.services);
    const record = { inputHash: hash(), outputHash: hash(), settlementType: "settle" as const, teeId: fx.tee.teeId, teeTimestamp: "1700000000" };
    expectRefused(await settle({ ...recordHeaders(record), "x-inference-authorization": `Bearer ${INFERENCE_KEY}` }, { url: relaxed.url }), "tee_signature_required");
    expect((await door(record, { url: relaxed.url, key: INFERENCE_KEY })).body).toMatchObject({ error: "tee_signature_required" });
    expect(await snapshot([signer], relaxed.services)).toEqual(before);
  });

  it("a registered TEE's record is still accepted from anyone, and a re-typed signature still refused", async () => {
    const record = genuine({ inputHash: hash(), outputHash: hash(), settlementType: "settle-batch" });
    const paid = await settle(recordHeaders(record), { url: relaxed.url });
    expect(paid).toMatchObject({ success: true, extensions: { inferenceSettlement: { id: recordId(record) } } });
    const before = await snapshot([signer], relaxed.services);
    expectRefused(await settle({ ...recordHeaders({ ...record, settlementType: "settle" }), authorization: `Bearer ${INFERENCE_KEY}` }, { url: relaxed.url }), "invalid_tee_signature");
    expect(await snapshot([signer], relaxed.services)).toEqual(before);
  });
});
