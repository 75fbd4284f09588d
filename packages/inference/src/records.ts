/** Inference records: what gets anchored, and the id that makes anchoring idempotent. */
import type { Address, Hex } from "viem";
import { keccak256 } from "@facilitator/merkle";

export const SETTLEMENT_TYPES = ["settle", "settle-metadata", "settle-batch"] as const;
export type SettlementType = (typeof SETTLEMENT_TYPES)[number];

/** A validated record in its one normal form (lower-case hex, timestamp as a decimal string). */
export interface InferenceRecord {
  inputHash: Hex;
  outputHash: Hex;
  settlementType: SettlementType;
  teeId?: Hex;
  /** uint256 as a decimal string (unix seconds by convention). */
  teeTimestamp?: string;
  /**
   * 65-byte EIP-712 signature over TeeAttestation v2 (teeId, inputHash, outputHash, teeTimestamp,
   * settlementType, metadataHash), in its normal form: lower-case, low s, v 27/28 (see tee.ts); or,
   * with `signatureScheme` "rsa-pss-sha256", the tee-gateway's RSA-PSS signature over
   * keccak256(inputHash ‖ outputHash ‖ teeTimestamp), as lower-case hex.
   */
  teeSignature?: Hex;
  /**
   * Absent: TEE attestation v2 (secp256k1 EIP-712). "rsa-pss-sha256": a tee-gateway record, which its
   * signature binds to nothing but the two hashes and the time; such records are anchored in gateway
   * batches, whose leaves are the gateway facilitator's (see gateway-merkle.ts).
   */
  signatureScheme?: typeof GATEWAY_SCHEME;
  modelInfo?: string;
  inputData?: string;
  outputData?: string;
  /**
   * The x402 payment this inference was paid with, when it came through `/settle`. Kept beside the
   * record, never part of its id: the TEE cannot sign a payment made after its attestation, so the
   * first accepted link stays and the same attestation paid again is still one record.
   */
  payment?: { network: string; transaction: string };
}

/** The signature scheme of the tee-gateway's records. */
export const GATEWAY_SCHEME = "rsa-pss-sha256";

/**
 * `settle-batch` records go into Merkle batches; the others are anchored one transaction each;
 * gateway records (RSA-PSS) into Merkle batches of their own, in the gateway's leaf layout.
 */
export const LANES = ["batch", "single", "gateway"] as const;
export type Lane = (typeof LANES)[number];
export const laneOf = (type: SettlementType): Lane => (type === "settle-batch" ? "batch" : "single");
/** The lane a record waits in. */
export const recordLane = (r: Pick<InferenceRecord, "settlementType" | "signatureScheme">): Lane =>
  r.signatureScheme === GATEWAY_SCHEME ? "gateway" : laneOf(r.settlementType);
/** Lanes whose batches are Merkle trees on Walrus (the other anchors one record per transaction). */
export const isMerkleLane = (lane: Lane): boolean => lane !== "single";

/**
 * The record id: keccak256 over a versioned prefix and the canonical JSON (keys sorted, absent fields
 * omitted) of the normalised record without its payment link. Same attestation, same id, so a
 * repeated post (or the same record paid twice) anchors once.
 */
export function recordId(record: InferenceRecord): Hex {
  const { payment: _payment, ...anchored } = record;
  // WebAssembly keccak (@facilitator/merkle): viem's pure-JS one was half the door's CPU per record.
  const digest = keccak256(Buffer.from(`x402-inference-record/1\n${canonicalJson(anchored)}`, "utf8"));
  return `0x${Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength).toString("hex")}`;
}

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}

/** queued -> batched -> anchored | failed (failed: its batch was parked; retryable). Both queues count by this list. */
export const RECORD_STATUSES = ["queued", "batched", "anchored", "failed"] as const;
export type RecordStatus = (typeof RECORD_STATUSES)[number];

/** Where and how a record was anchored: everything an auditor needs to check it. */
export interface Anchor {
  kind: Lane;
  batchId: string;
  transactionHash: Hex;
  blockNumber: number;
  network: string;
  relayAddress: Address;
  /** Batch records only: */
  root?: Hex;
  /** Position of the record in the batch dump's `recordIds` and `tree.values`. */
  index?: number;
  proof?: Hex[];
  batchSize?: number;
  walrusBlobId?: string;
}

export interface RecordEntry {
  id: Hex;
  record: InferenceRecord;
  status: RecordStatus;
  /** ms since the epoch at which the record was accepted. */
  enqueuedAt: number;
  batchId?: string;
  anchor?: Anchor;
  error?: { reason: string; message: string };
}

/**
 * The relay transaction a batch records before sending it, as the queues store it (plain JSON). The
 * EVM transaction engine defines the shape; records stored by earlier versions stay readable there.
 */
export type { RecordedTx as StoredTx } from "@facilitator/evm";
