/**
 * Validation at the door. Pure: a record is checked and normalised before anything is stored, so a
 * malformed record is refused with a reason and can never reach (and block) a batch.
 *
 * Only records whose origin is proven are accepted (checkOrigin):
 *   - a record signed by a known, active TEE is accepted from anyone: TeeAttestation v2 (see tee.ts)
 *     by a TEE_KEYS or registry secp256k1 key, or the tee-gateway's RSA-PSS signature by a registry key;
 *   - without such a signature, only from a caller authenticated with an inference key, and only when
 *     the deployment does not require TEE signatures and the record does not name a known TEE.
 * Registry TEEs that are revoked, whose measurement is revoked, or (when liveness is required) whose
 * last heartbeat is too old are refused whoever posts their records.
 */
import { Reason, reject, type Rejection, describeValue } from "@facilitator/core";
import { decodeBase64, verifyGatewaySignature } from "@facilitator/tee";
import { getAddress, isAddress, type Address, type Hex } from "viem";
import { GATEWAY_SCHEME, recordId, SETTLEMENT_TYPES, type InferenceRecord, type SettlementType } from "./records.ts";
import { normaliseTeeSignature, recordAttestation, recoverTeeSigner } from "./tee.ts";
import { configuredTee, type KnownTee } from "./tee-directory.ts";

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
  /**
   * Registry TEEs whose last heartbeat (or registration, before any) is older than this many seconds
   * are refused (`tee_heartbeat_stale`). Undefined: liveness is not required.
   */
  heartbeatMaxAgeSeconds?: number;
}

export interface ValidateOptions {
  /** Applies when the record names no settlement type. */
  defaultType?: SettlementType;
  /**
   * The caller presented a valid inference key (INFERENCE_API_KEYS). Without it only records signed
   * by a registered TEE are accepted. Default false.
   */
  authenticated?: boolean;
  /** The registry's answer for the records' teeIds (TeeLookup), beside TEE_KEYS; registry entries win. */
  tees?: ReadonlyMap<string, KnownTee>;
  /** Unix seconds to judge heartbeat freshness by (default: now). */
  nowSeconds?: number;
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
  signature_scheme: "signatureScheme",
  model_info: "modelInfo",
  input_data: "inputData",
  output_data: "outputData",
};
const FIELDS = new Set<string>([
  "inputHash", "outputHash", "settlementType", "teeId", "teeTimestamp", "teeSignature",
  "modelInfo", "inputData", "outputData", "payment", "signatureScheme",
]);
/** RSA-PSS signatures of 2,048- to 4,096-bit keys. */
const RSA_SIGNATURE_BYTES = { min: 256, max: 512 };

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
  if (raw.signatureScheme !== undefined) {
    if (raw.signatureScheme !== GATEWAY_SCHEME) return bad(`signatureScheme must be "${GATEWAY_SCHEME}" (the tee-gateway's) or absent (TEE attestation v2)`);
    // The gateway's signature binds no settlement type, so its records go into gateway batches only.
    if (type !== "settle-batch") {
      return { ok: false, ...reject(Reason.invalidSettlementType, `${GATEWAY_SCHEME} records are anchored in gateway batches only (settlementType settle-batch)`) };
    }
    const sig = rsaSignatureHex(raw.teeSignature);
    if (!sig) return { ok: false, ...reject(Reason.invalidTeeSignature, `an ${GATEWAY_SCHEME} teeSignature must be base64 or 0x-hex of ${RSA_SIGNATURE_BYTES.min} to ${RSA_SIGNATURE_BYTES.max} bytes`) };
    if (!record.teeId || record.teeTimestamp === undefined) return bad("teeSignature needs teeId and teeTimestamp beside it");
    record.signatureScheme = GATEWAY_SCHEME;
    record.teeSignature = sig;
  } else if (raw.teeSignature !== undefined) {
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

  const origin = checkOrigin(record, config, opts);
  if (origin) return { ok: false, ...origin };
  return { ok: true, id: recordId(record), record };
}

/**
 * Whether the record's origin is proven, in this order:
 *   1. it carries a signature and names a known TEE: a registry TEE must stand active (not revoked,
 *      its measurement not revoked) and, when liveness is required, have a fresh heartbeat; the
 *      signature must be that TEE's, in its scheme, over the record; then it is accepted from anyone;
 *   2. signatures are required (REQUIRE_TEE_SIGNATURE): refused (no signature, or an unknown TEE);
 *   3. it names a known TEE without its signature: refused, whoever posts it (it would be shown
 *      as that TEE's inference);
 *   4. otherwise only an authenticated caller's record is accepted; an unknown TEE's signature is
 *      kept as it came (auditors check it against keys they trust).
 */
function checkOrigin(record: InferenceRecord, config: ValidationConfig, opts: ValidateOptions): Rejection | undefined {
  const known = knownTee(record, config, opts);
  if (record.teeSignature && known) {
    const standing = standingProblem(record.teeId!, known, config, opts.nowSeconds ?? Math.floor(Date.now() / 1000));
    return standing ?? signatureProblem(record, known);
  }
  if (config.requireTeeSignature) {
    if (record.teeSignature) return reject(Reason.unknownTee, `teeId ${record.teeId} is not a registered TEE`);
    return reject(Reason.teeSignatureRequired, "this facilitator requires teeId, teeTimestamp and a registered TEE's teeSignature on every record");
  }
  if (known) {
    return reject(Reason.teeSignatureRequired, `the record names the registered TEE ${record.teeId} but carries no teeSignature`);
  }
  if (opts.authenticated !== true) {
    return reject(
      Reason.inferenceUnauthenticated,
      "a record without a registered TEE's signature is accepted only from a caller with an inference API key (Authorization or X-Inference-Authorization: Bearer <key>)",
    );
  }
  return undefined;
}

function knownTee(record: InferenceRecord, config: ValidationConfig, opts: ValidateOptions): KnownTee | undefined {
  if (!record.teeId) return undefined;
  const fromRegistry = opts.tees?.get(record.teeId);
  if (fromRegistry) return fromRegistry;
  const address = config.teeKeys.get(record.teeId);
  return address ? configuredTee(address) : undefined;
}

/** Why a known TEE may not have records anchored now, if it may not. */
export function standingProblem(teeId: string, tee: KnownTee, config: Pick<ValidationConfig, "heartbeatMaxAgeSeconds">, nowSeconds: number): Rejection | undefined {
  if (tee.standing === "revoked") return reject(Reason.teeRevoked, `TEE ${teeId} was revoked in the TEE registry`);
  if (tee.standing !== "active") {
    return reject(Reason.teeMeasurementRevoked, `the enclave measurement TEE ${teeId} attested is ${tee.standing === "measurement_revoked" ? "revoked" : "not approved"} in the TEE registry`);
  }
  const maxAge = config.heartbeatMaxAgeSeconds;
  if (maxAge !== undefined && tee.source === "registry") {
    const age = BigInt(nowSeconds) - (tee.aliveAt ?? 0n);
    if (age > BigInt(maxAge)) {
      return reject(Reason.teeHeartbeatStale, `TEE ${teeId} last proved alive ${age} s ago; this facilitator requires a heartbeat within ${maxAge} s`);
    }
  }
  return undefined;
}

function signatureProblem(record: InferenceRecord, tee: KnownTee): Rejection | undefined {
  const gateway = record.signatureScheme === GATEWAY_SCHEME;
  if (gateway !== (tee.scheme === "rsa-pss-sha256")) {
    return reject(Reason.invalidTeeSignature, `TEE ${record.teeId} signs with ${tee.scheme}; this record carries ${gateway ? "an RSA-PSS" : "an EIP-712"} signature`);
  }
  if (gateway) {
    const verdict = verifyGatewaySignature({
      publicKey: tee.publicKey!,
      inputHash: record.inputHash,
      outputHash: record.outputHash,
      timestamp: BigInt(record.teeTimestamp!),
      signature: Buffer.from(record.teeSignature!.slice(2), "hex"),
    });
    return verdict.ok
      ? undefined
      : reject(Reason.invalidTeeSignature, `teeSignature is not TEE ${record.teeId}'s RSA-PSS signature of keccak256(inputHash ‖ outputHash ‖ timestamp) (${verdict.message})`);
  }
  const signer = recoverTeeSigner(recordAttestation(record), record.teeSignature!);
  if (signer !== tee.address) {
    return reject(
      Reason.invalidTeeSignature,
      `teeSignature is not TEE ${record.teeId}'s signature (key ${tee.address}) of this record's TeeAttestation v2 (teeId, inputHash, outputHash, timestamp, settlementType, metadataHash)`,
    );
  }
  return undefined;
}

/** An RSA signature as base64 (the gateway's spelling) or 0x-hex, as lower-case hex; undefined when neither. */
function rsaSignatureHex(v: unknown): Hex | undefined {
  if (typeof v !== "string") return undefined;
  const bytes = /^0x[0-9a-fA-F]*$/.test(v) && v.length % 2 === 0 ? Buffer.from(v.slice(2), "hex") : decodeBase64(v);
  if (!bytes || bytes.length < RSA_SIGNATURE_BYTES.min || bytes.length > RSA_SIGNATURE_BYTES.max) return undefined;
  return `0x${Buffer.from(bytes).toString("hex")}`;
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
