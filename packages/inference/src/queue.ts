/**
 * The durable queue seam between the intake (API) and the anchoring worker. Two implementations,
 * one contract test suite: LmdbQueue (an lmdb file, one process) and BullQueue (BullMQ on Redis, many
 * API and worker processes).
 *
 * Records: queued -> batched -> anchored | failed. A batch is the unit of anchoring work: many
 * `settle-batch` records under one Merkle root, or one `settle` / `settle-metadata` record. Its
 * progress is persisted at every step (formed -> uploaded -> signed -> anchored), so a worker that
 * dies anywhere is replaced by one that resumes from the last recorded step with the same root and,
 * once signed, the same transaction.
 */
import { randomBytes } from "node:crypto";
import type { Hex } from "viem";
import type { Anchor, InferenceRecord, Lane, RecordEntry, RecordStatus, StoredTx } from "./records.ts";

export interface EnqueueItem {
  id: Hex;
  record: InferenceRecord;
}

export interface EnqueueResult {
  id: Hex;
  /** False when the id was already known (the call changed nothing). */
  created: boolean;
  status: RecordStatus;
}

/** Where a batch's work stands. Each value is written before the next step starts. */
export type BatchProgress =
  /** Records assigned, `createdAt` fixed: the tree (and its root) is now determined. */
  | "formed"
  /** Tree dump stored on Walrus; `root` and `blobId` recorded (batch lane only). */
  | "uploaded"
  /** Transaction signed and recorded (`tx`); it may or may not have been sent. */
  | "signed";

export type BatchState = "open" | "parked" | "anchored";

export interface Batch {
  id: string;
  lane: Lane;
  recordIds: Hex[];
  /** ISO time of formation; part of the dump, so the dump bytes (and blob id) never change. */
  createdAt: string;
  state: BatchState;
  progress: BatchProgress;
  /** Bumped by every save; a save based on a stale copy is refused (another worker took over). */
  version: number;
  root?: Hex;
  blobId?: string;
  tx?: StoredTx;
  /** Failures that count toward parking (transient ones do not). */
  attempts: number;
  /** All failures, transient or not: the exponent of the retry backoff. */
  failures: number;
  /** ms since the epoch before which no worker picks the batch up again. */
  retryAt?: number;
  lastError?: { reason: string; message: string };
  anchoredTx?: Hex;
  anchoredBlock?: number;
}

/** What every record of an anchored batch shares; each record of a Merkle batch adds its index and proof. */
export type BatchAnchor = Omit<Anchor, "index" | "proof">;

/**
 * How a batch was anchored, as `completeBatch` stores it: what its records share and, for a Merkle
 * batch, the tree's nodes (32-byte slots, OpenZeppelin's layout) with each record's slot, in `recordIds`
 * order. A record's proof is read off the nodes when it is asked for: storing a proof per record cost
 * the worker and Redis more than the rest of anchoring (about 1 KB of JSON a record).
 */
export interface BatchAnchoring {
  anchor: BatchAnchor;
  tree?: { nodes: Uint8Array; treeIndices: ArrayLike<number> };
}

export interface BatchLimits {
  maxSize: number;
  /** Form a smaller batch once the oldest waiting record has waited this long. */
  maxWaitMs: number;
}

export type FormResult =
  | { batch: Batch }
  /** Nothing formed; `retryInMs` is when waiting records will be old enough (undefined: none wait). */
  | { batch?: undefined; retryInMs?: number };

export interface QueueStats {
  records: Record<RecordStatus, number>;
  /** ms since the epoch at which the oldest record still waiting for a batch was accepted. */
  oldestQueuedAt?: number;
  openBatches: number;
  parkedBatches: number;
}

/** Batch ids sort by formation time, so open batches are resumed oldest first. */
function newBatchId(now: number): string {
  return `${String(now).padStart(15, "0")}-${randomBytes(6).toString("hex")}`;
}

/** A batch as both stores form it: open, formed, no records yet (the store adds them in the same step). */
export function newBatch(lane: Lane, now = Date.now()): Batch {
  return { id: newBatchId(now), lane, recordIds: [], createdAt: new Date(now).toISOString(), state: "open", progress: "formed", version: 1, attempts: 0, failures: 0 };
}

export class LeaseLostError extends Error {
  constructor(batchId: string) {
    super(`batch ${batchId} was changed by another worker; this worker lets it go`);
    this.name = "LeaseLostError";
  }
}

export interface InferenceQueue {
  /**
   * Stores new records durably before resolving, each together with its place in its lane's line, in
   * one atomic step: a record is never stored without being queued for anchoring. Known ids are left
   * untouched (`created: false`). If it throws, either nothing was stored or everything was (the reply
   * was lost), or, for a BullQueue in several partitions, that holds for each partition's share;
   * calling again with the same items is safe and completes the intake either way.
   */
  enqueue(items: readonly EnqueueItem[]): Promise<EnqueueResult[]>;
  get(id: Hex): Promise<RecordEntry | undefined>;
  getMany(ids: readonly Hex[]): Promise<(RecordEntry | undefined)[]>;
  /** The records alone, in order (undefined: not stored): what the worker builds a batch's tree from. */
  records(ids: readonly Hex[]): Promise<(InferenceRecord | undefined)[]>;

  /** Moves waiting records of `lane` into a new persisted batch when `limits` say it is time. */
  formBatch(lane: Lane, limits: BatchLimits): Promise<FormResult>;
  /** Takes an open batch that is due, held by this queue handle alone until given back. */
  leaseBatch(): Promise<Batch | undefined>;
  /** Persists a step of a leased batch (compare-and-set on `version`; throws LeaseLostError). */
  saveBatch(batch: Batch): Promise<Batch>;
  /** Marks every record anchored (its anchor: the batch's, with its own index and proof), the batch anchored, and gives it back. */
  completeBatch(batch: Batch, anchoring: BatchAnchoring): Promise<void>;
  /** Saves and gives back a batch to be tried again at `batch.retryAt`. */
  deferBatch(batch: Batch): Promise<void>;
  /** Parks a batch that keeps failing: its records become `failed` with the reason. */
  parkBatch(batch: Batch, error: { reason: string; message: string }): Promise<void>;
  /** Gives back a leased batch untouched (worker stopping). */
  releaseBatch(batch: Batch): Promise<void>;
  /** Re-opens parked batches (all, or the one named); returns how many. */
  retryParked(batchId?: string): Promise<number>;
  getBatch(id: string): Promise<Batch | undefined>;
  stats(): Promise<QueueStats>;
  close(): Promise<void>;
}
