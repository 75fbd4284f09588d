import { describe, expect, it } from "vitest";
import { hashTypedData, keccak256, toHex, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { Reason } from "@facilitator/core";
import { recordId, canonicalJson } from "./records.ts";
import { recoverTeeSigner, signTeeAttestation, teeAttestationDigest, teeTypedData } from "./tee.ts";
import { parseTeeRegistry, validateRecord, type ValidationConfig } from "./validation.ts";
import { recordInputFromSettleHeaders } from "./settle-headers.ts";
import { inferenceConfigFromEnv } from "./config.ts";

const h = (s: string): Hex => keccak256(toHex(s));
const teeKey = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d" as const;
const tee = privateKeyToAccount(teeKey);
const otherKey = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a" as const;
const TEE_ID = h("tee-1");

const att = { teeId: TEE_ID, inputHash: h("in"), outputHash: h("out"), timestamp: 1_700_000_000n };
const goodSig = signTeeAttestation(teeKey, att);
const signed = { inputHash: att.inputHash, outputHash: att.outputHash, settlementType: "settle-batch", teeId: TEE_ID, teeTimestamp: 1_700_000_000, teeSignature: goodSig };

const open: ValidationConfig = { requireTeeSignature: false, teeKeys: new Map([[TEE_ID, tee.address]]) };
const strict: ValidationConfig = { ...open, requireTeeSignature: true };

describe("TEE attestations", () => {
  it("hashes like viem's EIP-712 and signs like viem's signTypedData", async () => {
    expect(teeAttestationDigest(att)).toBe(hashTypedData(teeTypedData(att)));
    expect(goodSig).toBe(await tee.signTypedData(teeTypedData(att)));
    expect(recoverTeeSigner(att, goodSig)).toBe(tee.address);
  });

  it.each([
    ["another message", { ...att, outputHash: h("other") }, goodSig],
    ["a short signature", att, goodSig.slice(0, 130) as Hex],
    ["v out of range", att, `${goodSig.slice(0, 130)}1f` as Hex],
    ["a zero s", att, `${goodSig.slice(0, 66)}${"0".repeat(64)}1b` as Hex],
  ])("recovers no TEE from %s", (_, a, sig) => {
    expect(recoverTeeSigner(a, sig)).not.toBe(tee.address);
  });

  it("refuses the malleable (high-s) twin of a valid signature", () => {
    const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
    const s = BigInt(`0x${goodSig.slice(66, 130)}`);
    const v = parseInt(goodSig.slice(130), 16);
    const twin = `${goodSig.slice(0, 66)}${(n - s).toString(16).padStart(64, "0")}${(v === 27 ? 28 : 27).toString(16)}` as Hex;
    expect(recoverTeeSigner(att, twin)).toBeUndefined();
  });
});

describe("validateRecord", () => {
  const base = { inputHash: h("a"), outputHash: h("b"), settlementType: "settle-batch" };
  const cases: [string, unknown, ValidationConfig, string | null][] = [
    ["a minimal batch record", base, open, null],
    ["a signed record from a known TEE", signed, strict, null],
    ["snake_case field names", { input_hash: h("a"), output_hash: h("b"), settlement_type: "settle" }, open, null],
    ["a settle-metadata record", { ...base, settlementType: "settle-metadata", modelInfo: "m", inputData: "i", outputData: "o" }, open, null],
    ["a record with its payment", { ...base, payment: { network: "base-sepolia", transaction: `0x${"1".repeat(64)}` } }, open, null],
    ["an unregistered TEE's signature when not required", { ...signed, teeId: h("tee-9") }, open, null],
    ["not an object", "0x12", open, Reason.invalidInferenceRecord],
    ["an array", [base], open, Reason.invalidInferenceRecord],
    ["a short input hash", { ...base, inputHash: "0x1234" }, open, Reason.invalidInferenceRecord],
    ["a long output hash", { ...base, outputHash: `${h("b")}00` }, open, Reason.invalidInferenceRecord],
    ["a hash without 0x", { ...base, inputHash: h("a").slice(2) }, open, Reason.invalidInferenceRecord],
    ["a non-hex hash", { ...base, inputHash: `0x${"g".repeat(64)}` }, open, Reason.invalidInferenceRecord],
    ["an unknown settlement type", { ...base, settlementType: "settle-later" }, open, Reason.invalidSettlementType],
    ["no settlement type and no default", { inputHash: h("a"), outputHash: h("b") }, open, Reason.invalidSettlementType],
    ["an unknown field", { ...base, extra: 1 }, open, Reason.invalidInferenceRecord],
    ["a field given twice differently", { ...base, input_hash: h("c") }, open, Reason.invalidInferenceRecord],
    ["metadata on a batch record", { ...base, modelInfo: "m" }, open, Reason.invalidInferenceRecord],
    ["oversized inputData", { ...base, settlementType: "settle-metadata", inputData: "x".repeat(4097) }, open, Reason.payloadTooLarge],
    ["oversized modelInfo", { ...base, settlementType: "settle-metadata", modelInfo: "é".repeat(300) }, open, Reason.payloadTooLarge],
    ["non-string metadata", { ...base, settlementType: "settle-metadata", outputData: 5 }, open, Reason.invalidInferenceRecord],
    ["a negative timestamp", { ...signed, teeTimestamp: -1 }, open, Reason.invalidInferenceRecord],
    ["a fractional timestamp", { ...signed, teeTimestamp: 1.5 }, open, Reason.invalidInferenceRecord],
    ["a timestamp above uint256", { ...signed, teeTimestamp: (2n ** 256n).toString() }, open, Reason.invalidInferenceRecord],
    ["a malformed signature", { ...signed, teeSignature: "0xabcd" }, open, Reason.invalidTeeSignature],
    ["a signature without teeId", { ...base, teeTimestamp: 1, teeSignature: goodSig }, open, Reason.invalidInferenceRecord],
    ["a known TEE's bad signature", { ...signed, outputHash: h("tampered") }, open, Reason.invalidTeeSignature],
    ["another key's signature", { ...signed, teeSignature: signTeeAttestation(otherKey, att) }, open, Reason.invalidTeeSignature],
    ["no signature when required", base, strict, Reason.invalidTeeSignature],
    ["an unknown TEE when required", { ...signed, teeId: h("tee-9") }, strict, Reason.unknownTee],
    ["a bad payment", { ...base, payment: { network: "base" } }, open, Reason.invalidInferenceRecord],
  ];

  it.each(cases)("%s", (_, input, config, reason) => {
    const result = validateRecord(input, config);
    if (reason === null) {
      expect(result).toMatchObject({ ok: true });
    } else {
      expect(result).toMatchObject({ ok: false, reason });
      expect((result as { message: string }).message.length).toBeGreaterThan(10);
    }
  });

  it("normalises, so equal content gets one id whatever its spelling", () => {
    const a = validateRecord({ ...signed, inputHash: signed.inputHash.toUpperCase().replace("0X", "0x") }, open);
    const b = validateRecord({ tee_id: TEE_ID, input_hash: signed.inputHash, output_hash: signed.outputHash, tee_timestamp: "1700000000", tee_signature: goodSig, settlementType: "settle-batch" }, open);
    expect(a.ok && b.ok && a.id === b.id).toBe(true);
    expect(a.ok && a.record.teeTimestamp).toBe("1700000000");
    const c = validateRecord({ ...signed, payment: { network: "base", transaction: "0x01" } }, open);
    expect(c.ok && a.ok && c.id !== a.id).toBe(true);
  });

  it("applies the default settlement type and fills absent metadata", () => {
    const r = validateRecord({ inputHash: h("a"), outputHash: h("b"), modelInfo: "m" }, open, "settle-metadata");
    expect(r).toMatchObject({ ok: true, record: { settlementType: "settle-metadata", modelInfo: "m", inputData: "", outputData: "" } });
  });
});

describe("record ids", () => {
  it("hash the canonical JSON, independent of key order", () => {
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: undefined }] })).toBe('{"a":[{"d":2}],"b":1}');
    const r1 = recordId({ settlementType: "settle", inputHash: h("a"), outputHash: h("b") });
    const r2 = recordId({ outputHash: h("b"), inputHash: h("a"), settlementType: "settle" });
    expect(r1).toBe(r2);
    expect(recordId({ settlementType: "settle-batch", inputHash: h("a"), outputHash: h("b") })).not.toBe(r1);
  });
});

describe("parseTeeRegistry", () => {
  it("reads teeId=address pairs and refuses malformed ones", () => {
    const reg = parseTeeRegistry(` ${TEE_ID.toUpperCase().replace("0X", "0x")}=${tee.address.toLowerCase()}, `);
    expect(reg.get(TEE_ID)).toBe(tee.address);
    expect(parseTeeRegistry(undefined).size).toBe(0);
    expect(() => parseTeeRegistry(`${TEE_ID}`)).toThrow(/teeId/);
    expect(() => parseTeeRegistry(`0x12=${tee.address}`)).toThrow();
  });
});

describe("recordInputFromSettleHeaders", () => {
  const payment = { network: "base-sepolia", transaction: `0x${"a".repeat(64)}` };
  const meta = Buffer.from(JSON.stringify({ modelInfo: "m", inputData: "i", outputData: "o" })).toString("base64");

  it.each([
    ["no inference headers", {}, undefined],
    ["both hashes", { "x-input-hash": h("a"), "X-Output-Hash": h("b") }, { input: { inputHash: h("a"), outputHash: h("b"), settlementType: "settle", payment } }],
    ["a type and metadata", { "x-input-hash": h("a"), "x-output-hash": h("b"), "x-settlement-type": "settle-metadata", "x-settlement-metadata": meta }, { input: { settlementType: "settle-metadata", modelInfo: "m", inputData: "i", outputData: "o" } }],
    ["one hash only", { "x-input-hash": h("a") }, { error: { reason: Reason.invalidInferenceRecord } }],
    ["metadata that is not base64 JSON", { "x-input-hash": h("a"), "x-output-hash": h("b"), "x-settlement-metadata": "%%%" }, { error: { reason: Reason.invalidInferenceRecord } }],
    ["metadata with an unknown field", { "x-input-hash": h("a"), "x-output-hash": h("b"), "x-settlement-metadata": Buffer.from('{"x":1}').toString("base64") }, { error: { reason: Reason.invalidInferenceRecord } }],
  ])("%s", (_, headers, expected) => {
    const result = recordInputFromSettleHeaders(headers as Record<string, string>, payment);
    if (expected === undefined) expect(result).toBeUndefined();
    else expect(result).toMatchObject(expected);
  });
});

describe("inferenceConfigFromEnv", () => {
  it("accepts the published facilitator's names", () => {
    const c = inferenceConfigFromEnv({
      SETTLEMENT_BATCH_SIZE: "50",
      X402_SETTLEMENT_CONTRACT: tee.address,
      EVM_PRIVATE_KEY: teeKey,
      WALRUS_PUBLISHER_URL: "http://localhost:9002/v1/blobs",
    });
    expect(c).toMatchObject({ batchSize: 50, batchTimeoutMs: 60_000, relayAddress: tee.address, relayerKey: teeKey, walrus: { aggregatorUrl: "http://localhost:9002", epochs: 53, permanent: true } });
  });

  it("refuses malformed numbers and keys", () => {
    expect(() => inferenceConfigFromEnv({ SETTLEMENT_BATCH_SIZE: "0" })).toThrow(/SETTLEMENT_BATCH_SIZE/);
    expect(() => inferenceConfigFromEnv({ EVM_PRIVATE_KEY: "0x12" })).toThrow(/private key/);
  });
});
