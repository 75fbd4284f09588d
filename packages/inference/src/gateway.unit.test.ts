/**
 * The tee-gateway drop-in at the door, without a chain: /settle_data headers, RSA-PSS records against
 * registry TEEs in every standing, heartbeat freshness, the registry entry as the door sees it, and
 * the gateway's leaf layout against OpenZeppelin's StandardMerkleTree.
 */
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { describe, expect, it } from "vitest";
import { keccak256, stringToBytes, toHex, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { Reason } from "@facilitator/core";
import { generateGatewayKey, inferenceMessageHash, KeyScheme, MeasurementStatus, signRsaPss } from "@facilitator/tee";
import { buildGatewayBatchTree, GATEWAY_LEAF_TYPES, gatewayLeafValue, loadGatewayBatchDump, verifyGatewayLeafProof } from "./gateway-merkle.ts";
import { settleDataFromHeaders } from "./gateway.ts";
import { recordId, recordLane, type InferenceRecord } from "./records.ts";
import { RegistryTeeDirectory, registryTee, type KnownTee } from "./tee-directory.ts";
import type { RegistryTee } from "./tee-registry.ts";
import { signTeeRecord } from "./tee.ts";
import { validateRecord, type ValidationConfig } from "./validation.ts";

const gw = generateGatewayKey();
const other = generateGatewayKey();
const request = '{"model":"gpt","messages":[{"role":"user","content":"hi"}]}';
const response = "hello 0xdead, I mean: hello";
const inputHash = keccak256(stringToBytes(request));
const outputHash = keccak256(stringToBytes(response));
const TS = 1_763_779_200n;
const signature = signRsaPss(gw.privateKeyPem, inferenceMessageHash(inputHash, outputHash, TS));
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64");

/** What the gateway posts for one inference, as its facilitator reads it (hashes as Python's .hex(), without 0x). */
const batchData = { tee_id: gw.teeId, input_hash: inputHash.slice(2), output_hash: outputHash.slice(2), tee_signature: signature, tee_timestamp: Number(TS) };
const individualData = { ...batchData, input: request, output: response, timestamp: String(TS + 1n), eth_address: "0x00000000000000000000000000000000000000aa" };
const headers = (type: string, data?: unknown) => ({ "x-settlement-type": type, ...(data === undefined ? {} : { "X-Settlement-Data": typeof data === "string" ? data : b64(data) }) });

const active = (key = gw, over: Partial<KnownTee> = {}): KnownTee => ({ scheme: "rsa-pss-sha256", publicKey: key.publicKey, source: "registry", standing: "active", aliveAt: TS, ...over });
const strict: ValidationConfig = { requireTeeSignature: true, teeKeys: new Map() };
const gatewayInput = () => {
  const parsed = settleDataFromHeaders(headers("batch", batchData));
  if (parsed.kind !== "record") throw new Error("expected a record");
  return parsed.input;
};

describe("/settle_data headers", () => {
  it("acknowledges private and reads batch and individual into one gateway record", () => {
    expect(settleDataFromHeaders(headers("private"))).toEqual({ kind: "private" });
    const batch = settleDataFromHeaders(headers("batch", batchData));
    const individual = settleDataFromHeaders(headers("Individual", individualData));
    expect(batch).toEqual({
      kind: "record",
      settlementType: "batch",
      input: { teeId: gw.teeId, inputHash, outputHash, teeTimestamp: String(TS), teeSignature: signature, signatureScheme: "rsa-pss-sha256", settlementType: "settle-batch" },
    });
    expect(individual).toMatchObject({ kind: "record", settlementType: "individual", input: (batch as { input: unknown }).input });
  });

  it.each([
    ["no type", {}, Reason.invalidSettlementType],
    ["an unknown type", headers("settle-batch", batchData), Reason.invalidSettlementType],
    ["batch without data", headers("batch"), Reason.invalidSettlementData],
    ["data that is not base64", headers("batch", "{not base64}"), Reason.invalidSettlementData],
    ["data that is not an object", headers("batch", [1, 2]), Reason.invalidSettlementData],
    ["a short tee_id", headers("batch", { ...batchData, tee_id: "0x1234" }), Reason.invalidSettlementData],
    ["a missing output_hash", headers("batch", { ...batchData, output_hash: undefined }), Reason.invalidSettlementData],
    ["a negative tee_timestamp", headers("batch", { ...batchData, tee_timestamp: -1 }), Reason.invalidSettlementData],
    ["no signature", headers("batch", { ...batchData, tee_signature: "" }), Reason.invalidSettlementData],
    ["individual input that is not the signed request", headers("individual", { ...individualData, input: `${request} ` }), Reason.gatewayInputMismatch],
    ["individual output that is not the signed response", headers("individual", { ...individualData, output: "hello" }), Reason.gatewayOutputMismatch],
    ["individual input that is not text", headers("individual", { ...individualData, input: { prompt: "hi" } }), Reason.invalidSettlementData],
    ["individual without eth_address", headers("individual", { ...individualData, eth_address: "0x12" }), Reason.invalidSettlementData],
    ["individual without timestamp", headers("individual", { ...individualData, timestamp: undefined }), Reason.invalidSettlementData],
  ])("refuses %s", (_name, h, reason) => {
    const parsed = settleDataFromHeaders(h as Record<string, string>);
    expect(parsed.kind).toBe("refused");
    if (parsed.kind === "refused") expect(parsed.error.reason).toBe(reason);
  });
});

describe("gateway records at the door", () => {
  const validate = (input: unknown, tee: KnownTee | undefined, config: ValidationConfig = strict, opts: { authenticated?: boolean; nowSeconds?: number } = {}) =>
    validateRecord(input, config, { tees: tee ? new Map([[gw.teeId, tee]]) : new Map(), nowSeconds: Number(TS), ...opts });

  it("accepts a record signed in the gateway's exact format by an active registry TEE, from anyone, in its own lane", () => {
    const v = validate(gatewayInput(), active());
    expect(v.ok).toBe(true);
    if (!v.ok) return;
    expect(v.record).toMatchObject({ signatureScheme: "rsa-pss-sha256", teeSignature: toHex(Buffer.from(signature, "base64")), settlementType: "settle-batch" });
    expect(recordLane(v.record)).toBe("gateway");
    // The hex spelling of the same signature is the same record.
    const hexSpelled = validate({ ...gatewayInput(), teeSignature: toHex(Buffer.from(signature, "base64")) }, active());
    expect(hexSpelled.ok && hexSpelled.id).toBe(v.id);
  });

  it.each<[string, () => ReturnType<typeof validateRecord>, string]>([
    ["a TEE never registered", () => validate(gatewayInput(), undefined), Reason.unknownTee],
    ["a revoked TEE", () => validate(gatewayInput(), active(gw, { standing: "revoked" })), Reason.teeRevoked],
    ["a revoked measurement", () => validate(gatewayInput(), active(gw, { standing: "measurement_revoked" })), Reason.teeMeasurementRevoked],
    ["a stale heartbeat, when liveness is required", () => validate(gatewayInput(), active(gw, { aliveAt: TS - 1_801n }), { ...strict, heartbeatMaxAgeSeconds: 1_800 }), Reason.teeHeartbeatStale],
    ["a signature under another key", () => validate(gatewayInput(), active(other)), Reason.invalidTeeSignature],
    ["a changed output hash", () => validate({ ...gatewayInput(), outputHash: keccak256("0x01") }, active()), Reason.invalidTeeSignature],
    ["a secp256k1 TEE's id with an RSA signature", () => validate(gatewayInput(), { scheme: "secp256k1-eip712", address: privateKeyToAccount(`0x${"22".repeat(32)}`).address, source: "registry", standing: "active", aliveAt: TS }), Reason.invalidTeeSignature],
    ["a gateway record of another settlement type", () => validate({ ...gatewayInput(), settlementType: "settle" }, active()), Reason.invalidSettlementType],
    ["a signature that is not RSA-sized", () => validate({ ...gatewayInput(), teeSignature: "AAAA" }, active()), Reason.invalidTeeSignature],
    ["an unknown scheme", () => validate({ ...gatewayInput(), signatureScheme: "rsa-pkcs1" }, active()), Reason.invalidInferenceRecord],
  ])("refuses %s", (_name, run, reason) => {
    const v = run();
    expect(v.ok).toBe(false);
    if (!v.ok) expect(v.reason).toBe(reason);
  });

  it("lets liveness off by default, and judges a fresh heartbeat fresh", () => {
    expect(validate(gatewayInput(), active(gw, { aliveAt: 1n })).ok).toBe(true);
    expect(validate(gatewayInput(), active(gw, { aliveAt: TS - 1_800n }), { ...strict, heartbeatMaxAgeSeconds: 1_800 }).ok).toBe(true);
  });

  it("keeps an unknown gateway's record only from an inference key holder where signatures are not required", () => {
    const open: ValidationConfig = { requireTeeSignature: false, teeKeys: new Map() };
    expect(validate(gatewayInput(), undefined, open)).toMatchObject({ ok: false, reason: Reason.inferenceUnauthenticated });
    expect(validate(gatewayInput(), undefined, open, { authenticated: true }).ok).toBe(true);
  });

  it("applies the registry's standing to secp256k1 TEEs too", () => {
    const key = `0x${"33".repeat(32)}` as Hex;
    const account = privateKeyToAccount(key);
    const teeId = keccak256(account.publicKey);
    const record = signTeeRecord({ teeId, privateKey: key }, { inputHash, outputHash, settlementType: "settle-batch", teeTimestamp: String(TS) });
    const tee: KnownTee = { scheme: "secp256k1-eip712", address: account.address, source: "registry", standing: "active", aliveAt: TS };
    expect(validateRecord(record, strict, { tees: new Map([[teeId, tee]]) }).ok).toBe(true);
    expect(validateRecord(record, strict, { tees: new Map([[teeId, { ...tee, standing: "revoked" }]]) })).toMatchObject({ ok: false, reason: Reason.teeRevoked });
  });
});

describe("registry entries as the door sees them", () => {
  const entry: RegistryTee = {
    signingKey: toHex(gw.publicKey),
    scheme: KeyScheme.RsaPssSha256,
    teeType: 1,
    registeredBlock: 10n,
    registeredAt: 1_000n,
    lastHeartbeat: 0n,
    revokedBlock: 0n,
    measurement: keccak256("0x01"),
    attestationHash: keccak256("0x02"),
    attestationBlobId: "blob",
    endpoint: "",
    paymentAddress: "0x0000000000000000000000000000000000000000",
  };
  const approved = { status: MeasurementStatus.Approved, approvedBlock: 1n, revokedBlock: 0n };

  it.each([
    ["active, alive since registration", entry, approved, { standing: "active", aliveAt: 1_000n }],
    ["alive since its last heartbeat", { ...entry, lastHeartbeat: 2_000n }, approved, { standing: "active", aliveAt: 2_000n }],
    ["revoked itself", { ...entry, revokedBlock: 12n }, approved, { standing: "revoked" }],
    ["its measurement revoked", entry, { ...approved, status: MeasurementStatus.Revoked, revokedBlock: 11n }, { standing: "measurement_revoked" }],
    ["its measurement unknown", entry, { status: 0, approvedBlock: 0n, revokedBlock: 0n }, { standing: "measurement_not_approved" }],
  ])("%s", (_name, tee, measurement, expected) => {
    expect(registryTee(tee, measurement)).toMatchObject({ scheme: "rsa-pss-sha256", source: "registry", ...expected });
  });

  it("caches answers and misses for the ttl, falls back to TEE_KEYS, and forgets on request", async () => {
    let reads = 0;
    let now = 0;
    const reader = { getTee: async (id: Hex) => (reads++, id === gw.teeId ? entry : undefined), measurementStatus: async () => approved };
    const configured = new Map([[other.teeId, privateKeyToAccount(`0x${"44".repeat(32)}`).address]]);
    const dir = new RegistryTeeDirectory(reader, configured, { ttlMs: 1_000, now: () => now });
    const first = await dir.lookup([gw.teeId, other.teeId, keccak256("0x99")]);
    expect([...first.keys()]).toEqual([gw.teeId, other.teeId]);
    expect(first.get(other.teeId)).toMatchObject({ source: "config", standing: "active" });
    await dir.lookup([gw.teeId, other.teeId, keccak256("0x99")]);
    expect(reads).toBe(3);
    now = 1_001;
    await dir.lookup([gw.teeId]);
    expect(reads).toBe(4);
    dir.forget(gw.teeId);
    await dir.lookup([gw.teeId]);
    expect(reads).toBe(5);
  });
});

describe("gateway batches", () => {
  const records: InferenceRecord[] = [0, 1, 2].map((i) => {
    const inH = keccak256(toHex(`in ${i}`));
    const outH = keccak256(toHex(`out ${i}`));
    const sig = toHex(Buffer.from(signRsaPss(gw.privateKeyPem, inferenceMessageHash(inH, outH, TS + BigInt(i))), "base64"));
    return { inputHash: inH, outputHash: outH, settlementType: "settle-batch", teeId: gw.teeId, teeTimestamp: String(TS + BigInt(i)), teeSignature: sig, signatureScheme: "rsa-pss-sha256" };
  });
  const ids = records.map(recordId);

  it("builds the gateway facilitator's tree: their leaf layout, OpenZeppelin's root and proofs", () => {
    const tree = buildGatewayBatchTree(records, ids, "2025-01-01T00:00:00.000Z");
    expect(GATEWAY_LEAF_TYPES).toEqual(["bytes32", "bytes32", "bytes32", "bytes", "uint256"]);
    expect(gatewayLeafValue(records[0]!)).toEqual([gw.teeId, records[0]!.inputHash, records[0]!.outputHash, records[0]!.teeSignature, String(TS)]);
    const oz = StandardMerkleTree.of(records.map(gatewayLeafValue), GATEWAY_LEAF_TYPES);
    expect(tree.root).toBe(oz.root);
    records.forEach((r, i) => expect(verifyGatewayLeafProof(tree.root, r, tree.proof(i))).toBe(true));
    expect(tree.dump).toMatchObject({ format: "x402-inference-batch/gateway-1", leafEncoding: ["bytes32 teeId", "bytes32 inputHash", "bytes32 outputHash", "bytes teeSignature", "uint256 timestamp"], recordIds: ids });
    expect(loadGatewayBatchDump(tree.dumpJson).root).toBe(tree.root);
    const compact = buildGatewayBatchTree(records, ids, "2025-01-01T00:00:00.000Z", { compactAbove: 1 });
    expect(loadGatewayBatchDump(compact.dumpJson).root).toBe(tree.root);
  });

  it("refuses a dump whose tree disagrees with its values", () => {
    const dump = JSON.parse(buildGatewayBatchTree(records, ids, "2025-01-01T00:00:00.000Z").dumpJson);
    dump.tree.values[0].value[4] = "1";
    expect(() => loadGatewayBatchDump(JSON.stringify(dump))).toThrow(/disagrees/);
  });
});
