import { describe, expect, it } from "vitest";
import { encodeAbiParameters, hashTypedData, keccak256, toHex, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { Reason } from "@facilitator/core";
import { keccakReady } from "@facilitator/merkle";
import { recordId, canonicalJson } from "./records.ts";
import {
  normaliseTeeSignature,
  recoverTeeSigner,
  signTeeAttestation,
  signTeeRecord,
  TEE_DOMAIN,
  teeAttestationDigest,
  teeMetadataHash,
  teeTypedData,
  type TeeAttestation,
} from "./tee.ts";
import { parseTeeRegistry, validateRecord, type ValidationConfig } from "./validation.ts";
import { recordInputFromSettleHeaders } from "./settle-headers.ts";

const h = (s: string): Hex => keccak256(toHex(s));
const teeKey = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d" as const;
const tee = privateKeyToAccount(teeKey);
const otherKey = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a" as const;
const TEE_ID = h("tee-1");
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const ZERO = `0x${"0".repeat(64)}` as Hex;

const att: TeeAttestation = { teeId: TEE_ID, inputHash: h("in"), outputHash: h("out"), timestamp: 1_700_000_000n, settlementType: "settle-batch", metadataHash: ZERO };
const goodSig = signTeeAttestation(teeKey, att);
const signed = { inputHash: att.inputHash, outputHash: att.outputHash, settlementType: "settle-batch", teeId: TEE_ID, teeTimestamp: 1_700_000_000, teeSignature: goodSig };
const meta = { modelInfo: "m", inputData: "i", outputData: "o" };
const signedMeta = signTeeRecord({ teeId: TEE_ID, privateKey: teeKey }, { inputHash: h("in"), outputHash: h("out"), settlementType: "settle-metadata" as const, teeTimestamp: "1700000000", ...meta });

/** Signatures may come with v 0/1 (recovery id) instead of 27/28. */
const vRaw = (sig: Hex): Hex => `${sig.slice(0, 130)}0${parseInt(sig.slice(130), 16) - 27}` as Hex;
/** The same signature with s -> n - s and v flipped: recovers the same key (malleable twin). */
function highS(sig: Hex): Hex {
  const s = BigInt(`0x${sig.slice(66, 130)}`);
  const v = parseInt(sig.slice(130), 16);
  return `${sig.slice(0, 66)}${(N - s).toString(16).padStart(64, "0")}${(v === 27 ? 28 : 27).toString(16)}` as Hex;
}

/** Unsigned records are allowed to key-authenticated callers (REQUIRE_TEE_SIGNATURE=false). */
const open: ValidationConfig = { requireTeeSignature: false, teeKeys: new Map([[TEE_ID, tee.address]]) };
/** The default once TEE_KEYS is set. */
const strict: ValidationConfig = { ...open, requireTeeSignature: true };
/** No TEE keys at all: the inference key is the only proof of origin. */
const keyOnly: ValidationConfig = { requireTeeSignature: false, teeKeys: new Map() };
const authed = { authenticated: true };

describe("TEE attestations (v2)", () => {
  it("hashes like viem's EIP-712 and signs like viem's signTypedData", async () => {
    expect(TEE_DOMAIN).toEqual({ name: "TEE Inference", version: "2" });
    expect(teeAttestationDigest(att)).toBe(hashTypedData(teeTypedData(att)));
    expect(goodSig).toBe(await tee.signTypedData(teeTypedData(att)));
    expect(recoverTeeSigner(att, goodSig)).toBe(tee.address);
    const metaAtt: TeeAttestation = { ...att, settlementType: "settle-metadata", metadataHash: teeMetadataHash(meta) };
    expect(teeAttestationDigest(metaAtt)).toBe(hashTypedData(teeTypedData(metaAtt)));
  });

  it("signs the settlement type and the metadata", () => {
    expect(teeMetadataHash(meta)).toBe(keccak256(encodeAbiParameters([{ type: "string" }, { type: "string" }, { type: "string" }], ["m", "i", "o"])));
    expect(teeMetadataHash({})).not.toBe(ZERO); // empty metadata is still a settle-metadata record's, not "none"
    for (const changed of [{ settlementType: "settle" as const }, { metadataHash: teeMetadataHash(meta) }, { timestamp: 1n }]) {
      expect(recoverTeeSigner({ ...att, ...changed }, goodSig)).not.toBe(tee.address);
    }
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
    expect(recoverTeeSigner(att, highS(goodSig))).toBeUndefined();
    expect(normaliseTeeSignature(highS(goodSig))).toMatchObject({ ok: false, error: expect.stringMatching(/high s/) });
  });

  it("normalises v 0/1 to 27/28 and leaves the normal form alone", () => {
    expect(normaliseTeeSignature(vRaw(goodSig))).toEqual({ ok: true, signature: goodSig });
    expect(normaliseTeeSignature(goodSig.toUpperCase().replace("0X", "0x") as Hex)).toEqual({ ok: true, signature: goodSig });
    expect(recoverTeeSigner(att, vRaw(goodSig))).toBe(tee.address);
    for (const v of ["02", "1d", "ff"]) expect(normaliseTeeSignature(`${goodSig.slice(0, 130)}${v}` as Hex).ok).toBe(false);
    expect(normaliseTeeSignature(`0x${"0".repeat(64)}${goodSig.slice(66)}` as Hex).ok).toBe(false); // r = 0
  });
});

describe("validateRecord", () => {
  const base = { inputHash: h("a"), outputHash: h("b"), settlementType: "settle-batch" };
  type Case = [string, unknown, ValidationConfig, { authenticated?: boolean }, string | null];
  const cases: Case[] = [
    // who may anchor
    ["a registered TEE's signed record, from anyone", signed, strict, {}, null],
    ["a registered TEE's signed record when signatures are optional, from anyone", signed, open, {}, null],
    ["a registered TEE's signed settle-metadata record", signedMeta, strict, {}, null],
    ["a signature with v 0/1", { ...signed, teeSignature: vRaw(goodSig) }, strict, {}, null],
    ["an unsigned record from an authenticated caller, no TEE keys", base, keyOnly, authed, null],
    ["an unsigned record from an authenticated caller, signatures optional", base, open, authed, null],
    ["an unregistered TEE's signature from an authenticated caller", { ...signed, teeId: h("tee-9") }, open, authed, null],
    ["an unsigned record from an anonymous caller, no TEE keys", base, keyOnly, {}, Reason.inferenceUnauthenticated],
    ["an unsigned record from an anonymous caller, signatures optional", base, open, {}, Reason.inferenceUnauthenticated],
    ["an unregistered TEE's signature from an anonymous caller", { ...signed, teeId: h("tee-9") }, open, {}, Reason.inferenceUnauthenticated],
    ["no signature when required, even authenticated", base, strict, authed, Reason.teeSignatureRequired],
    ["a registered teeId without signature", { ...base, teeId: TEE_ID, teeTimestamp: 1 }, open, authed, Reason.teeSignatureRequired],
    ["an unknown TEE when required", { ...signed, teeId: h("tee-9") }, strict, authed, Reason.unknownTee],
    // what the signature covers
    ["a known TEE's bad signature", { ...signed, outputHash: h("tampered") }, open, authed, Reason.invalidTeeSignature],
    ["another key's signature", { ...signed, teeSignature: signTeeAttestation(otherKey, att) }, open, authed, Reason.invalidTeeSignature],
    ["a batch signature re-used as settle", { ...signed, settlementType: "settle" }, strict, authed, Reason.invalidTeeSignature],
    ["a batch signature re-used as settle-metadata", { ...signed, settlementType: "settle-metadata", ...meta }, open, authed, Reason.invalidTeeSignature],
    ["signed metadata changed", { ...signedMeta, outputData: "something else" }, strict, {}, Reason.invalidTeeSignature],
    ["signed metadata dropped", { ...signedMeta, modelInfo: undefined, inputData: undefined, outputData: undefined }, strict, {}, Reason.invalidTeeSignature],
    ["another timestamp", { ...signed, teeTimestamp: 1_700_000_001 }, strict, {}, Reason.invalidTeeSignature],
    ["a high-s signature", { ...signed, teeSignature: highS(goodSig) }, open, authed, Reason.invalidTeeSignature],
    ["a high-s signature of an unregistered TEE", { ...signed, teeId: h("tee-9"), teeSignature: highS(goodSig) }, open, authed, Reason.invalidTeeSignature],
    ["v 29", { ...signed, teeSignature: `${goodSig.slice(0, 130)}1d` }, open, authed, Reason.invalidTeeSignature],
    // shape
    ["snake_case field names", { input_hash: h("a"), output_hash: h("b"), settlement_type: "settle" }, open, authed, null],
    ["a settle-metadata record", { ...base, settlementType: "settle-metadata", ...meta }, open, authed, null],
    ["a record with its payment", { ...base, payment: { network: "base-sepolia", transaction: `0x${"1".repeat(64)}` } }, open, authed, null],
    ["not an object", "0x12", open, authed, Reason.invalidInferenceRecord],
    ["an array", [base], open, authed, Reason.invalidInferenceRecord],
    ["a short input hash", { ...base, inputHash: "0x1234" }, open, authed, Reason.invalidInferenceRecord],
    ["a long output hash", { ...base, outputHash: `${h("b")}00` }, open, authed, Reason.invalidInferenceRecord],
    ["a hash without 0x", { ...base, inputHash: h("a").slice(2) }, open, authed, Reason.invalidInferenceRecord],
    ["a non-hex hash", { ...base, inputHash: `0x${"g".repeat(64)}` }, open, authed, Reason.invalidInferenceRecord],
    ["an unknown settlement type", { ...base, settlementType: "settle-later" }, open, authed, Reason.invalidSettlementType],
    ["no settlement type and no default", { inputHash: h("a"), outputHash: h("b") }, open, authed, Reason.invalidSettlementType],
    ["an unknown field", { ...base, extra: 1 }, open, authed, Reason.invalidInferenceRecord],
    ["a field given twice differently", { ...base, input_hash: h("c") }, open, authed, Reason.invalidInferenceRecord],
    ["metadata on a batch record", { ...base, modelInfo: "m" }, open, authed, Reason.invalidInferenceRecord],
    ["oversized inputData", { ...base, settlementType: "settle-metadata", inputData: "x".repeat(4097) }, open, authed, Reason.payloadTooLarge],
    ["oversized modelInfo", { ...base, settlementType: "settle-metadata", modelInfo: "é".repeat(300) }, open, authed, Reason.payloadTooLarge],
    ["non-string metadata", { ...base, settlementType: "settle-metadata", outputData: 5 }, open, authed, Reason.invalidInferenceRecord],
    ["a negative timestamp", { ...signed, teeTimestamp: -1 }, open, authed, Reason.invalidInferenceRecord],
    ["a fractional timestamp", { ...signed, teeTimestamp: 1.5 }, open, authed, Reason.invalidInferenceRecord],
    ["a timestamp above uint256", { ...signed, teeTimestamp: (2n ** 256n).toString() }, open, authed, Reason.invalidInferenceRecord],
    ["a malformed signature", { ...signed, teeSignature: "0xabcd" }, open, authed, Reason.invalidTeeSignature],
    ["a signature without teeId", { ...base, teeTimestamp: 1, teeSignature: goodSig }, open, authed, Reason.invalidInferenceRecord],
    ["a bad payment", { ...base, payment: { network: "base" } }, open, authed, Reason.invalidInferenceRecord],
  ];

  it.each(cases)("%s", (_, input, config, opts, reason) => {
    const result = validateRecord(input, config, opts);
    if (reason === null) {
      expect(result).toMatchObject({ ok: true });
    } else {
      expect(result).toMatchObject({ ok: false, reason });
      expect((result as { message: string }).message.length).toBeGreaterThan(10);
    }
  });

  it("normalises, so one attestation gets one id whatever its spelling or payment", () => {
    const a = validateRecord({ ...signed, inputHash: signed.inputHash.toUpperCase().replace("0X", "0x") }, open);
    const b = validateRecord({ tee_id: TEE_ID, input_hash: signed.inputHash, output_hash: signed.outputHash, tee_timestamp: "1700000000", tee_signature: goodSig, settlementType: "settle-batch" }, open);
    const v01 = validateRecord({ ...signed, teeSignature: vRaw(goodSig) }, open);
    const paid = validateRecord({ ...signed, payment: { network: "base", transaction: "0x01" } }, open);
    if (!a.ok || !b.ok || !v01.ok || !paid.ok) throw new Error("all four are valid");
    expect(new Set([a.id, b.id, v01.id, paid.id]).size).toBe(1);
    expect(a.record.teeTimestamp).toBe("1700000000");
    expect(v01.record.teeSignature).toBe(goodSig);
    expect(paid.record.payment).toEqual({ network: "base", transaction: "0x01" });
  });

  it("applies the default settlement type and fills absent metadata", () => {
    const r = validateRecord({ inputHash: h("a"), outputHash: h("b"), modelInfo: "m" }, open, { defaultType: "settle-metadata", authenticated: true });
    expect(r).toMatchObject({ ok: true, record: { settlementType: "settle-metadata", modelInfo: "m", inputData: "", outputData: "" } });
  });

  it("accepts a settle-metadata record whose TEE signed empty metadata, when the metadata is left out", () => {
    const bare = signTeeRecord({ teeId: TEE_ID, privateKey: teeKey }, { inputHash: h("x"), outputHash: h("y"), settlementType: "settle-metadata" as const });
    expect(validateRecord(bare, strict)).toMatchObject({ ok: true, record: { modelInfo: "", inputData: "", outputData: "" } });
  });
});

describe("record ids", () => {
  it("hash the canonical JSON, independent of key order, without the payment link", () => {
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: undefined }] })).toBe('{"a":[{"d":2}],"b":1}');
    const r1 = recordId({ settlementType: "settle", inputHash: h("a"), outputHash: h("b") });
    const r2 = recordId({ outputHash: h("b"), inputHash: h("a"), settlementType: "settle" });
    expect(r1).toBe(r2);
    expect(recordId({ settlementType: "settle-batch", inputHash: h("a"), outputHash: h("b") })).not.toBe(r1);
    expect(recordId({ settlementType: "settle", inputHash: h("a"), outputHash: h("b"), payment: { network: "base", transaction: "0x01" } })).toBe(r1);
  });

  it("are keccak256 of the versioned canonical JSON, the same digest viem computes (ids stored before stay valid)", async () => {
    await keccakReady; // the WebAssembly keccak, not its pure-JS stand-in
    const records = [
      { settlementType: "settle" as const, inputHash: h("a"), outputHash: h("b") },
      { settlementType: "settle-metadata" as const, inputHash: h("c"), outputHash: h("d"), modelInfo: "m", inputData: "é ünïcode", outputData: "" },
    ];
    for (const r of records) expect(recordId(r)).toBe(keccak256(toHex(`x402-inference-record/1\n${canonicalJson(r)}`)));
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
