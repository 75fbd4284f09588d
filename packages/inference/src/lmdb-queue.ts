/**
 * LmdbQueue: the InferenceQueue in an lmdb file, for the one-process embedded default. Every
 * change is one lmdb transaction, committed with fsync before its promise resolves (overlappingSync
 * off), so an acknowledged record survives kill -9 and power loss. Leases live in memory: one process
 * owns the file's work (a restarted process starts with no leases and resumes every open batch).
 */
import { open, type RootDatabase } from "lmdb";
import type { Hex } from "viem";
import { nodeProof } from "@facilitator/merkle";
import { LANES, recordLane, RECORD_STATUSES, type InferenceRecord, type Lane, type RecordEntry, type RecordStatus } from "./records.ts";
import {
  LeaseLostError,
  newBatch,
  type Batch,
  type BatchAnchoring,
  type BatchAnchor,
  type BatchLimits,
  type EnqueueItem,
  type EnqueueResult,
  type FormResult,
  type InferenceQueue,
  type QueueStats,
} from "./queue.ts";

type Key = (string | number)[];

/**
 * A record as stored: an entry anchored by this version keeps only its place in its batch (index, slot
 * in the tree's nodes) and reads the rest from the batch's anchoring; earlier ones hold `anchor` itself.
 */
type StoredEntry = RecordEntry & { place?: [index: number, treeIndex: number] };
/** ["a", batchId]: what the batch's records share, and its tree's nodes (32-byte slots) for their proofs. */
interface StoredAnchoring {
  anchor: BatchAnchor;
  nodes?: Uint8Array;
}
const MAX_SEQ = Number.MAX_SAFE_INTEGER;
/** Batch anchorings kept decoded (a 4,096-record batch's nodes are 256 KB). */
const ANCHORINGS_KEPT = 8;

export interface LmdbQueueOptions {
  /** Folder of the lmdb environment (created if missing). */
  path: string;
}

export class LmdbQueue implements InferenceQueue {
  private readonly db: RootDatabase<unknown, Key>;
  private readonly leased = new Set<string>();
  /** Recently read batch anchorings (written once, never changed), oldest first. */
  private readonly anchorings = new Map<string, StoredAnchoring>();

  constructor(opts: LmdbQueueOptions) {
    // overlappingSync off: a commit resolves only once fsync'd, not merely visible.
    this.db = open<unknown, Key>({ path: opts.path, compression: false, overlappingSync: false, cache: false });
  }

  enqueue(items: readonly EnqueueItem[]): Promise<EnqueueResult[]> {
    const now = Date.now();
    return this.db.transaction(() =>
      items.map(({ id, record }): EnqueueResult => {
        const existing = this.db.get(["r", id]) as RecordEntry | undefined;
        if (existing) return { id, created: false, status: existing.status };
        const seq = ((this.db.get(["m", "seq"]) as number | undefined) ?? 0) + 1;
        this.db.put(["m", "seq"], seq);
        const entry: RecordEntry = { id, record, status: "queued", enqueuedAt: now };
        this.db.put(["r", id], entry);
        this.db.put(["w", recordLane(record), seq], { id, at: now });
        this.bump("queued", 1);
        return { id, created: true, status: "queued" };
      }),
    );
  }

  async get(id: Hex): Promise<RecordEntry | undefined> {
    return (await this.getMany([id]))[0];
  }

  async getMany(ids: readonly Hex[]): Promise<(RecordEntry | undefined)[]> {
    return ids.map((id) => {
      const stored = this.db.get(["r", id]) as StoredEntry | undefined;
      if (!stored || stored.status !== "anchored" || stored.anchor || !stored.batchId) return stored;
      // Anchored since batch anchorings were stored once per batch: the anchor is the batch's, the proof read off its nodes.
      const anchoring = this.anchoring(stored.batchId);
      const { place, ...entry } = stored;
      if (!anchoring) return entry;
      if (place && !anchoring.nodes) throw new Error(`batch ${stored.batchId}: its tree nodes are missing from the store`);
      const own = place ? { index: place[0], proof: nodeProof(anchoring.nodes!, place[1]) } : {};
      return { ...entry, anchor: { ...anchoring.anchor, ...own } };
    });
  }

  /** A batch's anchoring; the last few are kept decoded, so lookups of one batch's records do not each copy its nodes. */
  private anchoring(batchId: string): StoredAnchoring | undefined {
    const cached = this.anchorings.get(batchId);
    if (cached) return cached;
    const read = this.db.get(["a", batchId]) as StoredAnchoring | undefined;
    if (read) {
      this.anchorings.set(batchId, read);
      if (this.anchorings.size > ANCHORINGS_KEPT) this.anchorings.delete(this.anchorings.keys().next().value!);
    }
    return read;
  }

  async records(ids: readonly Hex[]): Promise<(InferenceRecord | undefined)[]> {
    return ids.map((id) => (this.db.get(["r", id]) as RecordEntry | undefined)?.record);
  }

  formBatch(lane: Lane, limits: BatchLimits): Promise<FormResult> {
    const now = Date.now();
    return this.db.transaction((): FormResult => {
      const waiting = [...this.db.getRange({ start: ["w", lane], end: ["w", lane, MAX_SEQ], limit: limits.maxSize })];
      if (waiting.length === 0) return {};
      const oldest = (waiting[0]!.value as { at: number }).at;
      if (waiting.length < limits.maxSize && now - oldest < limits.maxWaitMs) return { retryInMs: oldest + limits.maxWaitMs - now };
      const batch = newBatch(lane, now);
      for (const { key, value } of waiting) {
        const id = (value as { id: Hex }).id;
        this.db.remove(key);
        const rec = this.db.get(["r", id]) as RecordEntry | undefined;
        if (!rec || rec.status !== "queued") continue;
        this.db.put(["r", id], { ...rec, status: "batched", batchId: batch.id });
        batch.recordIds.push(id);
      }
      if (batch.recordIds.length === 0) return {};
      this.bump("queued", -batch.recordIds.length);
      this.bump("batched", batch.recordIds.length);
      this.db.put(["b", batch.id], batch);
      this.db.put(["o", batch.id], true);
      return { batch };
    });
  }

  async leaseBatch(): Promise<Batch | undefined> {
    const now = Date.now();
    for (const { key } of this.db.getRange({ start: ["o"], end: ["o", "\uffff"] })) {
      const id = key[1] as string;
      if (this.leased.has(id)) continue;
      const batch = this.db.get(["b", id]) as Batch | undefined;
      if (!batch || batch.state !== "open" || (batch.retryAt ?? 0) > now) continue;
      this.leased.add(id);
      return batch;
    }
    return undefined;
  }

  async saveBatch(batch: Batch): Promise<Batch> {
    return this.db.transaction(() => {
      const next = { ...this.current(batch), ...batch, version: batch.version + 1 };
      this.db.put(["b", batch.id], next);
      return next;
    });
  }

  async completeBatch(batch: Batch, anchoring: BatchAnchoring): Promise<void> {
    const tree = anchoring.tree;
    await this.db.transaction(() => {
      this.current(batch);
      batch.recordIds.forEach((id, index) => {
        const rec = this.db.get(["r", id]) as StoredEntry;
        if (rec.status === "anchored") return;
        this.bump(rec.status, -1);
        this.bump("anchored", 1);
        const { error: _dropped, ...rest } = rec;
        const stored: StoredEntry = { ...rest, status: "anchored", ...(tree ? { place: [index, tree.treeIndices[index]!] } : {}) };
        this.db.put(["r", id], stored);
      });
      const stored: StoredAnchoring = { anchor: anchoring.anchor, ...(tree ? { nodes: Buffer.from(tree.nodes.buffer, tree.nodes.byteOffset, tree.nodes.byteLength) } : {}) };
      this.db.put(["a", batch.id], stored);
      this.db.put(["b", batch.id], { ...batch, state: "anchored", version: batch.version + 1, retryAt: undefined });
      this.db.remove(["o", batch.id]);
    });
    this.leased.delete(batch.id);
  }

  async deferBatch(batch: Batch): Promise<void> {
    try {
      await this.saveBatch(batch);
    } finally {
      this.leased.delete(batch.id);
    }
  }

  async parkBatch(batch: Batch, error: { reason: string; message: string }): Promise<void> {
    try {
      await this.db.transaction(() => {
        this.current(batch);
        for (const id of batch.recordIds) {
          const rec = this.db.get(["r", id]) as RecordEntry;
          if (rec.status !== "batched") continue;
          this.bump("batched", -1);
          this.bump("failed", 1);
          this.db.put(["r", id], { ...rec, status: "failed", error });
        }
        this.db.put(["b", batch.id], { ...batch, state: "parked", lastError: error, version: batch.version + 1 });
        this.db.remove(["o", batch.id]);
        this.db.put(["p", batch.id], true);
      });
    } finally {
      this.leased.delete(batch.id);
    }
  }

  async releaseBatch(batch: Batch): Promise<void> {
    this.leased.delete(batch.id);
  }

  async retryParked(batchId?: string): Promise<number> {
    return this.db.transaction(() => {
      const ids = batchId ? [batchId] : [...this.db.getKeys({ start: ["p"], end: ["p", "\uffff"] })].map((k) => k[1] as string);
      let count = 0;
      for (const id of ids) {
        const batch = this.db.get(["b", id]) as Batch | undefined;
        if (!batch || batch.state !== "parked") continue;
        for (const rid of batch.recordIds) {
          const rec = this.db.get(["r", rid]) as RecordEntry;
          if (rec.status !== "failed") continue;
          this.bump("failed", -1);
          this.bump("batched", 1);
          const { error: _cleared, ...rest } = rec;
          this.db.put(["r", rid], { ...rest, status: "batched" });
        }
        this.db.put(["b", id], { ...batch, state: "open", attempts: 0, retryAt: undefined, version: batch.version + 1 });
        this.db.remove(["p", id]);
        this.db.put(["o", id], true);
        count++;
      }
      return count;
    });
  }

  async getBatch(id: string): Promise<Batch | undefined> {
    return this.db.get(["b", id]) as Batch | undefined;
  }

  async stats(): Promise<QueueStats> {
    const records = Object.fromEntries(RECORD_STATUSES.map((s) => [s, (this.db.get(["c", s]) as number | undefined) ?? 0])) as QueueStats["records"];
    const oldest = LANES
      .map((lane) => [...this.db.getRange({ start: ["w", lane], end: ["w", lane, MAX_SEQ], limit: 1 })][0]?.value as { at: number } | undefined)
      .filter((w) => w !== undefined)
      .map((w) => w.at);
    return {
      records,
      ...(oldest.length ? { oldestQueuedAt: Math.min(...oldest) } : {}),
      openBatches: this.db.getKeysCount({ start: ["o"], end: ["o", "\uffff"] }),
      parkedBatches: this.db.getKeysCount({ start: ["p"], end: ["p", "\uffff"] }),
    };
  }

  async close(): Promise<void> {
    this.leased.clear();
    await this.db.close();
  }

  /** The stored batch, if `batch` is its latest open version; inside a transaction. */
  private current(batch: Batch): Batch {
    const stored = this.db.get(["b", batch.id]) as Batch | undefined;
    if (!stored || stored.version !== batch.version || stored.state !== "open") throw new LeaseLostError(batch.id);
    return stored;
  }

  private bump(status: RecordStatus, delta: number): void {
    const key: Key = ["c", status];
    this.db.put(key, ((this.db.get(key) as number | undefined) ?? 0) + delta);
  }
}

