/**
 * Validation at the door. Pure: a record is checked and normalised before anything is stored, so a
 * malformed record is refused with a reason and can never reach (and block) a batch.
 *
 * Only records whose origin is proven are accepted (checkOrigin):
 *   - a record signed by a registered TEE (TeeAttestation v2, see tee.ts) is accepted from anyone;
 *   - without such a signature, only from a caller authenticated with an inference key, and only when
 *     the deployment does not require TEE signatures and the record does not name a registered TEE.
 */
import { Reason, reject, type Rejection, describeValue } from "@facilitator/core";
import { getAddress, isAddress, type Address, type Hex } from "viem";
import { recordId, SETTLEMENT_TYPES, type InferenceRecord, type SettlementType } from "./records.ts";
import { normaliseTeeSignature, recordAttestation, recoverTeeSigner } from "./tee.ts";

/** Known TEEs: teeId (lower-case 32-byte hex) -> the address of its signing key. */
export type TeeRegistry = ReadonlyMap<string, Address>;

export interface RecordLimits {
  /** UTF-8 bytes of `modelInfo`. */
  modelInfoBytes: number;
  /** UTF-8 bytes of each of `inputData` and `outputData`. */
  dataBytes: number;
}

/** Metadata goes into event data on-chain, paid per byte: keep it to what an auditor needs. */
export const DEFAULT_LIMITS: RecordLimits = { modelInfoBytes: 512, dataBytes: 4096 };

export interface ValidationConfig {
  /**
   * Refuse records without a valid signature from the key registered for their teeId, whoever posts
   * them. When false, a caller authenticated with an inference key may post unsigned records.
   */
  requireTeeSignature: boolean;
  teeKeys: TeeRegistry;
  limits?: RecordLimits;
}

export interface ValidateOptions {
  /** Applies when the record names no settlement type. */
  defaultType?: SettlementType;
  /**
   * The caller presented a valid inference key (INFERENCE_API_KEYS). Without it only records signed
   * by a registered TEE are accepted. Default false.
   */
  authenticated?: boolean;
}

export type ValidationResult = { ok: true; id: Hex; record: InferenceRecord } | ({ ok: false } & Rejection);

const HASH32 = /^0x[0-9a-fA-F]{64}$/;
const SIG65 = /^0x[0-9a-fA-F]{130}$/;
const UINT = /^\d{1,78}$/;
const UINT256_MAX = 2n ** 256n - 1n;

/** Fields a record may carry; snake_case names are the grid router's `settle_data` spelling. */
const ALIASES: Record<string, keyof InferenceRecord> = {
  input_hash: "inputHash",
  output_hash: "outputHash",
  settlement_type: "settlementType",
  tee_id: "teeId",
  tee_timestamp: "teeTimestamp",
  tee_signature: "teeSignature",
  model_info: "modelInfo",
  input_data: "inputData",
  output_data: "outputData",
};
const FIELDS = new Set<string>([
  "inputHash", "outputHash", "settlementType", "teeId", "teeTimestamp", "teeSignature",
  "modelInfo", "inputData", "outputData", "payment",
]);

/** Checks one record and returns its normal form and id, or the first reason it is refused. */
export function validateRecord(input: unknown, config: ValidationConfig, opts: ValidateOptions = {}): ValidationResult {
  const defaultType = opts.defaultType;
  const bad = (message: string) => ({ ok: false as const, ...reject(Reason.invalidInferenceRecord, message) });
  if (typeof input !== "object" || input === null || Array.isArray(input)) return bad("a record must be a JSON object");

  const raw: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(input)) {
    const name = ALIASES[key] ?? key;
    if (!FIELDS.has(name)) return bad(`unknown field ${key}`);
    if (name in raw && raw[name] !== value) return bad(`${key} is given twice with different values`);
    raw[name] = value;
  }

  const type = raw.settlementType ?? defaultType;
  if (typeof type !== "string" || !(SETTLEMENT_TYPES as readonly string[]).includes(type)) {
    return { ok: false, ...reject(Reason.invalidSettlementType, `settlementType must be one of ${SETTLEMENT_TYPES.join(", ")}, got ${describeValue(type)}`) };
  }
  const record: InferenceRecord = { inputHash: "0x", outputHash: "0x", settlementType: type as SettlementType };

  for (const f of ["inputHash", "outputHash"] as const) {
    const v = raw[f];
    if (typeof v !== "string" || !HASH32.test(v)) return bad(`${f} must be a 32-byte hex string (0x and 64 hex digits)`);
    record[f] = v.toLowerCase() as Hex;
  }

  if (raw.teeId !== undefined) {
    if (typeof raw.teeId !== "string" || !HASH32.test(raw.teeId)) return bad("teeId must be a 32-byte hex string");
    record.teeId = raw.teeId.toLowerCase() as Hex;
  }
  if (raw.teeTimestamp !== undefined) {
    const ts = normaliseUint(raw.teeTimestamp);
    if (ts === undefined) return bad("teeTimestamp must be a non-negative integer (number or decimal string) below 2^256");
    record.teeTimestamp = ts;
  }
  if (raw.teeSignature !== undefined) {
    if (typeof raw.teeSignature !== "string" || !SIG65.test(raw.teeSignature)) {
      return { ok: false, ...reject(Reason.invalidTeeSignature, "teeSignature must be a 65-byte hex string (r, s, v)") };
    }
    if (!record.teeId || record.teeTimestamp === undefined) return bad("teeSignature needs teeId and teeTimestamp beside it");
    // One attestation, one spelling, one id: v 0/1 becomes 27/28; a high s is refused.
    const normal = normaliseTeeSignature(raw.teeSignature as Hex);
    if (!normal.ok) return { ok: false, ...reject(Reason.invalidTeeSignature, normal.error) };
    record.teeSignature = normal.signature;
  }

  const limits = config.limits ?? DEFAULT_LIMITS;
  const metadata = { modelInfo: limits.modelInfoBytes, inputData: limits.dataBytes, outputData: limits.dataBytes };
  for (const [f, max] of Object.entries(metadata) as [keyof typeof metadata, number][]) {
    const v = raw[f];
    if (v === undefined) continue;
    if (typeof v !== "string") return bad(`${f} must be a string`);
    if (type !== "settle-metadata") return bad(`${f} is only anchored with settlementType settle-metadata`);
    const bytes = Buffer.byteLength(v, "utf8");
    if (bytes > max) return { ok: false, ...reject(Reason.payloadTooLarge, `${f} is ${bytes} bytes; at most ${max} are accepted`) };
    record[f] = v;
  }
  if (type === "settle-metadata") {
    for (const f of ["modelInfo", "inputData", "outputData"] as const) record[f] ??= "";
  }

  if (raw.payment !== undefined) {
    const p = raw.payment as Record<string, unknown> | null;
    const okText = (v: unknown) => typeof v === "string" && v.length > 0 && v.length <= 256;
    if (typeof p !== "object" || p === null || !okText(p.network) || !okText(p.transaction) || Object.keys(p).length !== 2) {
      return bad("payment must be {network, transaction}, two non-empty strings");
    }
    record.payment = { network: p.network as string, transaction: p.transaction as string };
  }

  const origin = checkOrigin(record, config, opts.authenticated === true);
  if (origin) return { ok: false, ...origin };
  return { ok: true, id: recordId(record), record };
}

/**
 * Whether the record's origin is proven, in this order:
 *   1. it carries a signature and names a registered TEE: the signature must be that TEE's over the
 *      whole record (TeeAttestation v2), and then it is accepted from anyone;
 *   2. signatures are required (REQUIRE_TEE_SIGNATURE): refused (no signature, or an unknown TEE);
 *   3. it names a registered TEE without its signature: refused, whoever posts it (it would be shown
 *      as that TEE's inference);
 *   4. otherwise only an authenticated caller's record is accepted; an unregistered TEE's signature is
 *      kept as it came (auditors check it against keys they trust).
 */
function checkOrigin(record: InferenceRecord, config: ValidationConfig, authenticated: boolean): Rejection | undefined {
  const registered = record.teeId ? config.teeKeys.get(record.teeId) : undefined;
  if (record.teeSignature && registered) {
    const signer = recoverTeeSigner(recordAttestation(record), record.teeSignature);
    if (signer !== registered) {
      return reject(
        Reason.invalidTeeSignature,
        `teeSignature is not TEE ${record.teeId}'s signature (key ${registered}) of this record's TeeAttestation v2 (teeId, inputHash, outputHash, timestamp, settlementType, metadataHash)`,
      );
    }
    return undefined;
  }
  if (config.requireTeeSignature) {
    if (record.teeSignature) return reject(Reason.unknownTee, `teeId ${record.teeId} is not a registered TEE`);
    return reject(Reason.teeSignatureRequired, "this facilitator requires teeId, teeTimestamp and a registered TEE's teeSignature on every record");
  }
  if (registered) {
    return reject(Reason.teeSignatureRequired, `the record names the registered TEE ${record.teeId} but carries no teeSignature`);
  }
  if (!authenticated) {
    return reject(
      Reason.inferenceUnauthenticated,
      "a record without a registered TEE's signature is accepted only from a caller with an inference API key (Authorization or X-Inference-Authorization: Bearer <key>)",
    );
  }
  return undefined;
}

function normaliseUint(v: unknown): string | undefined {
  if (typeof v === "number") return Number.isSafeInteger(v) && v >= 0 ? String(v) : undefined;
  if (typeof v !== "string" || !UINT.test(v)) return undefined;
  const n = BigInt(v);
  return n <= UINT256_MAX ? n.toString() : undefined;
}

/**
 * Parses a TEE registry from configuration text: `teeId=address` pairs separated by commas or
 * whitespace, e.g. `0x11..11=0xAbC..., 0x22..22=0xDef...`. Throws on a malformed entry.
 */
export function parseTeeRegistry(text: string | undefined): Map<string, Address> {
  const registry = new Map<string, Address>();
  for (const entry of (text ?? "").split(/[\s,]+/).filter(Boolean)) {
    const [teeId, address, extra] = entry.split("=");
    if (extra !== undefined || !teeId || !HASH32.test(teeId) || !address || !isAddress(address, { strict: false })) {
      throw new Error(`TEE registry entry "${entry}" must be <32-byte hex teeId>=<address>`);
    }
    registry.set(teeId.toLowerCase(), getAddress(address));
  }
  return registry;
}
