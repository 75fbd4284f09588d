/** What an audit answers: the checks and the verdict they add up to, and what was found on the way. */
import type { Address, Hex } from "viem";
import type { SettlementEvent } from "./chain.ts";
import { firstFailure, isAttested, isVerified, type CheckName, type CheckResult } from "./checks.ts";
import type { LeafVersion } from "./formats.ts";

export interface LeafSummary {
  /** Position in the dump's values (OpenZeppelin's value index). */
  index: number;
  treeIndex: number;
  recordId?: string;
  /** Leaf encoding version (from the dump's format); "gateway" for the tee-gateway's layout. */
  version: LeafVersion;
  teeId: Hex;
  inputHash: Hex;
  outputHash: Hex;
  timestamp: string;
  /** v2 leaves only. */
  settlementType?: string;
  metadataHash?: Hex;
  teeSignature: Hex;
  leafHash: Hex;
  proof: Hex[];
}

export interface BatchSummary {
  root: Hex;
  batchSize: string;
  blobId: string;
  emitter: Address;
  transactionHash: Hex;
  blockNumber: string;
  /** Leaves in the dump (when it could be read). */
  leafCount?: number;
  /** The audited inference's leaf, for an inference audit. */
  leaf?: LeafSummary;
}

export interface SettlementSummary {
  kind: SettlementEvent["kind"];
  emitter: Address;
  transactionHash: Hex;
  blockNumber: string;
  metadata?: SettlementEvent["metadata"];
}

export type AuditSubject = { kind: "inference"; inputHash: Hex; outputHash: Hex } | { kind: "batch"; root: Hex };

export interface AuditReport {
  verified: boolean;
  /**
   * What was proven: "attested" (anchored, and attested by an approved enclave: every trust check
   * passed), "anchored" (the record is on chain as it says, its origin not proven), or "none".
   */
  assurance: "attested" | "anchored" | "none";
  subject: AuditSubject;
  /** The first failing check, when not verified. */
  failedCheck?: CheckName;
  checks: CheckResult[];
  batch?: BatchSummary;
  settlement?: SettlementSummary;
  /** What the auditor did with the hint, and other remarks. */
  notes: string[];
}

export interface ScanProgress {
  done: number;
  total: number;
  root: Hex;
  verified: boolean;
}

export interface ScanReport {
  verified: boolean;
  fromBlock: string;
  toBlock: string;
  total: number;
  verifiedCount: number;
  /** Every batch whose tree cannot be fetched or does not match, with the failing check. */
  failures: { root: Hex; transactionHash: Hex; blobId: string; failedCheck: CheckName; detail: string }[];
  batches: AuditReport[];
}

export interface BatchListing {
  root: Hex;
  batchSize: string;
  blobId: string;
  transactionHash: Hex;
  blockNumber: string;
  /** Unix seconds of the block. */
  timestamp: number;
}

/** The report of one audit; `notes` is copied, as the search goes on adding to its own list. */
export function auditReport(
  subject: AuditSubject,
  checks: CheckResult[],
  notes: readonly string[],
  found: Pick<AuditReport, "batch" | "settlement"> = {},
): AuditReport {
  const verified = isVerified(checks);
  const assurance = !verified ? "none" : isAttested(checks) ? "attested" : "anchored";
  return { verified, assurance, subject, failedCheck: verified ? undefined : firstFailure(checks)?.name, checks, ...found, notes: [...notes] };
}
