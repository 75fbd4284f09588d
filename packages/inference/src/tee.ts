/**
 * TEE attestations, version 2: EIP-712 typed data signed by a TEE's secp256k1 key.
 *
 *   domain  {name: "TEE Inference", version: "2"}   (no chainId, no verifyingContract: one signature
 *            is valid on every chain the record may be anchored on)
 *   type    TeeAttestation(bytes32 teeId, bytes32 inputHash, bytes32 outputHash, uint256 timestamp,
 *                          string settlementType, bytes32 metadataHash)
 *
 * The attestation covers every field of a record that reaches the chain or the record id: the TEE,
 * both hashes, the time, how the record is to be anchored, and the metadata that a `settle-metadata`
 * record publishes (`metadataHash = keccak256(abi.encode(string modelInfo, string inputData, string
 * outputData))`; zero for the other types, which carry no metadata). Version 1 signed only the first
 * four fields, so a public signature could be re-anchored under another type with metadata of anyone's
 * choosing; version 1 signatures are not accepted at the door.
 *
 * A TEE signs with viem's `signTypedData(teeTypedData(att))` (or any EIP-712 signer); the same digest
 * is checked on-chain by `SettlementRelay.verifyTeeSignature`. Recovery uses the native libsecp256k1
 * binding: pure-JS recovery costs about 3 ms, too slow for validating every record at the door.
 */
import secp256k1 from "secp256k1";
import { concat, encodeAbiParameters, getAddress, hashDomain, hexToBytes, keccak256, toBytes, toHex, type Address, type Hex } from "viem";
import type { InferenceRecord, SettlementType } from "./records.ts";

export interface TeeAttestation {
  teeId: Hex;
  inputHash: Hex;
  outputHash: Hex;
  /** uint256, usually unix seconds. */
  timestamp: bigint;
  settlementType: SettlementType;
  /** `teeMetadataHash(...)` for settle-metadata, ZERO_HASH otherwise. */
  metadataHash: Hex;
}

export const TEE_ATTESTATION_VERSION = "2";
export const TEE_DOMAIN = { name: "TEE Inference", version: TEE_ATTESTATION_VERSION } as const;

export const TEE_TYPES = {
  TeeAttestation: [
    { name: "teeId", type: "bytes32" },
    { name: "inputHash", type: "bytes32" },
    { name: "outputHash", type: "bytes32" },
    { name: "timestamp", type: "uint256" },
    { name: "settlementType", type: "string" },
    { name: "metadataHash", type: "bytes32" },
  ],
} as const;

const ZERO_HASH: Hex = `0x${"0".repeat(64)}`;

/** The full typed-data definition, for viem's `signTypedData` / `hashTypedData`. */
export function teeTypedData(att: TeeAttestation) {
  return { domain: TEE_DOMAIN, types: TEE_TYPES, primaryType: "TeeAttestation" as const, message: att };
}

/** What a settle-metadata record's attestation signs for its metadata. */
export function teeMetadataHash(m: { modelInfo?: string; inputData?: string; outputData?: string }): Hex {
  return keccak256(
    encodeAbiParameters([{ type: "string" }, { type: "string" }, { type: "string" }], [m.modelInfo ?? "", m.inputData ?? "", m.outputData ?? ""]),
  );
}

/** The metadata hash of a record: of its metadata for settle-metadata, zero for the other types. */
export function recordMetadataHash(r: Pick<InferenceRecord, "settlementType" | "modelInfo" | "inputData" | "outputData">): Hex {
  return r.settlementType === "settle-metadata" ? teeMetadataHash(r) : ZERO_HASH;
}

/** The attestation a record's signature must be over (the record must name teeId and teeTimestamp). */
export function recordAttestation(r: InferenceRecord): TeeAttestation {
  if (!r.teeId || r.teeTimestamp === undefined) throw new Error("a TEE attestation needs teeId and teeTimestamp");
  return {
    teeId: r.teeId,
    inputHash: r.inputHash,
    outputHash: r.outputHash,
    timestamp: BigInt(r.teeTimestamp),
    settlementType: r.settlementType,
    metadataHash: recordMetadataHash(r),
  };
}

const TYPEHASH = keccak256(
  toBytes("TeeAttestation(bytes32 teeId,bytes32 inputHash,bytes32 outputHash,uint256 timestamp,string settlementType,bytes32 metadataHash)"),
);
export const TEE_DOMAIN_SEPARATOR: Hex = hashDomain({
  domain: TEE_DOMAIN,
  types: { EIP712Domain: [{ name: "name", type: "string" }, { name: "version", type: "string" }] },
});
const TYPE_HASHES = new Map<string, Hex>();
const typeHash = (t: string): Hex => {
  let h = TYPE_HASHES.get(t);
  if (!h) TYPE_HASHES.set(t, (h = keccak256(toBytes(t))));
  return h;
};

/** The EIP-712 digest, computed directly (viem's generic `hashTypedData` is ten times slower). */
export function teeAttestationDigest(att: TeeAttestation): Hex {
  const structHash = keccak256(
    encodeAbiParameters(
      [{ type: "bytes32" }, { type: "bytes32" }, { type: "bytes32" }, { type: "bytes32" }, { type: "uint256" }, { type: "bytes32" }, { type: "bytes32" }],
      [TYPEHASH, att.teeId, att.inputHash, att.outputHash, att.timestamp, typeHash(att.settlementType), att.metadataHash],
    ),
  );
  return keccak256(concat(["0x1901", TEE_DOMAIN_SEPARATOR, structHash]));
}

// secp256k1 group order, and half of it: signatures with a larger s are malleable copies.
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const HALF_N = N >> 1n;

/**
 * The one form of a 65-byte r‖s‖v signature that this facilitator stores, signs and anchors: lower-case
 * hex, v 27/28. A v of 0/1 (the recovery id form) is rewritten to 27/28, so the two spellings of one
 * signature get one record id. A high s (the malleable twin of a valid signature, which OpenZeppelin's
 * ECDSA and the relay refuse), r or s out of range, or any other v is refused, not repaired.
 */
export function normaliseTeeSignature(signature: Hex): { ok: true; signature: Hex } | { ok: false; error: string } {
  if (!/^0x[0-9a-fA-F]{130}$/.test(signature)) return { ok: false, error: "teeSignature must be a 65-byte hex string (r, s, v)" };
  const hex = signature.toLowerCase();
  const r = BigInt(`0x${hex.slice(2, 66)}`);
  const s = BigInt(`0x${hex.slice(66, 130)}`);
  const v = parseInt(hex.slice(130), 16);
  if (r === 0n || r >= N) return { ok: false, error: "teeSignature has an r outside the secp256k1 range" };
  if (s === 0n || s >= N) return { ok: false, error: "teeSignature has an s outside the secp256k1 range" };
  if (s > HALF_N) return { ok: false, error: "teeSignature has a high s (the malleable twin of a signature); sign with a low s as EIP-2 requires" };
  if (v !== 0 && v !== 1 && v !== 27 && v !== 28) return { ok: false, error: `teeSignature has v = ${v}; it must be 27 or 28 (0 or 1 are accepted and stored as 27 or 28)` };
  return { ok: true, signature: `${hex.slice(0, 130)}${(v < 27 ? v + 27 : v).toString(16)}` as Hex };
}

/** The address that signed `att`, or undefined when the signature is malformed or not normal (see normaliseTeeSignature). */
export function recoverTeeSigner(att: TeeAttestation, signature: Hex): Address | undefined {
  const normal = normaliseTeeSignature(signature);
  if (!normal.ok) return undefined;
  const sig = hexToBytes(normal.signature);
  try {
    const pub = secp256k1.ecdsaRecover(sig.subarray(0, 64), sig[64]! - 27, hexToBytes(teeAttestationDigest(att)), false);
    return getAddress(`0x${keccak256(pub.subarray(1)).slice(-40)}`);
  } catch {
    return undefined;
  }
}

/** Signs `att` like a TEE would (65-byte r‖s‖v, low s, v = 27/28). For devnets and tests; TEEs sign on their own. */
export function signTeeAttestation(privateKey: Hex, att: TeeAttestation): Hex {
  const { signature, recid } = secp256k1.ecdsaSign(hexToBytes(teeAttestationDigest(att)), hexToBytes(privateKey));
  return toHex(concat([signature, Uint8Array.of(27 + recid)]));
}

/** The fields of a record a TEE signs (the rest of the record passes through `signTeeRecord` untouched). */
export type UnsignedRecord = Pick<InferenceRecord, "inputHash" | "outputHash" | "settlementType"> &
  Partial<Pick<InferenceRecord, "modelInfo" | "inputData" | "outputData" | "teeTimestamp">>;

/**
 * Signs a record as its TEE would: returns it with `teeId`, `teeTimestamp` (now, unless given) and
 * `teeSignature` set. Its settlement type and metadata are signed, so they must be final; absent
 * metadata of a settle-metadata record counts as "" (as the door reads it).
 */
export function signTeeRecord<R extends UnsignedRecord>(
  tee: { teeId: Hex; privateKey: Hex },
  record: R,
): R & { teeId: Hex; teeTimestamp: string; teeSignature: Hex } {
  const teeTimestamp = record.teeTimestamp ?? String(Math.floor(Date.now() / 1000));
  const att = recordAttestation({ ...record, teeId: tee.teeId, teeTimestamp });
  return { ...record, teeId: tee.teeId, teeTimestamp, teeSignature: signTeeAttestation(tee.privateKey, att) };
}
