/**
 * Where a BullQueue keeps its state in Redis, beside BullMQ's own keys for the anchor queue
 * (`{prefix}:{name}-anchor:`).
 *
 * Records, lanes, batches and the sets of batches live in partitions. Each script touches one
 * partition only (a record's hash, its lane's list, the counts; or a batch and its records), so on a
 * Redis Cluster a partition is one hash tag, one slot:
 *  - one partition (the default): everything under `{prefix}:{name}:inf:`, the names a single Redis has
 *    always used. On a cluster the prefix carries the hash tag (`{bull}`, as BullMQ asks for its own
 *    keys), so the whole queue is one slot on one primary, beside the anchor queue.
 *  - n partitions: partition i under `{prefix, tag removed}:{name}:inf:{<tag i>}:`, the tags spread over
 *    the slot space (one per n-th of it), so n primaries can share the queue. A record belongs to the
 *    partition its id hashes to, a batch to the partition it was formed in (its id ends `-p<i>`).
 *    The number is fixed for a deployment's life: records are found by it.
 */
import { crc16, spreadTags } from "@facilitator/redis";
import type { Lane } from "../records.ts";

/** One partition's keys. */
export class QueueKeys {
  /** Record hashes are this prefix plus the id (the Lua scripts build them from it). */
  readonly recordPrefix: string;
  /** Hash: record status -> how many records have it. */
  readonly counts: string;
  /** Set of the ids of open batches. */
  readonly open: string;
  /** Set of the ids of parked batches (what `retryParked` re-opens). */
  readonly parked: string;
  /** Set of the ids of formed batches whose anchor job may not exist yet (the forming worker died). */
  readonly unscheduled: string;

  constructor(private readonly base: string) {
    this.recordPrefix = `${base}rec:`;
    this.counts = `${base}counts`;
    this.open = `${base}open`;
    this.parked = `${base}parked`;
    this.unscheduled = `${base}unscheduled`;
  }

  /** Hash: record (JSON), status, enqueuedAt (and id, in records stored before 2026-12); then batchId, and at (`index:treeIndex`, its place in an anchored Merkle batch) or error (JSON). Records anchored before 2026-12 hold anchor (JSON) instead of at. */
  record(id: string): string {
    return this.recordPrefix + id;
  }

  /** List of the ids of a lane's records waiting for a batch, oldest first. */
  waiting(lane: Lane): string {
    return `${this.base}waiting:${lane}`;
  }

  /** Hash: doc (the Batch as JSON, without its record ids), ids (the record ids, comma-separated, written once when formed), version, state (kept outside doc so the scripts can compare them); once anchored, anchor (JSON: what its records share). */
  batch(id: string): string {
    return `${this.base}batch:${id}`;
  }

  /** String: an anchored Merkle batch's tree nodes, 32-byte slots in OpenZeppelin's layout; its records' proofs are read off it. */
  batchNodes(id: string): string {
    return `${this.base}batch:${id}:nodes`;
  }

  /** String: one intake call's answer, kept for a resend of that call. */
  answer(callId: string): string {
    return `${this.base}answer:${callId}`;
  }
}

const BATCH_PARTITION = /-p(\d+)$/;

/** The partitions of one deployment's queue, and which one holds a record or a batch. */
export class QueueLayout {
  readonly partitions: readonly QueueKeys[];
  /** The BullMQ queue whose jobs are batches (its keys live under the same prefix). */
  readonly anchorQueueName: string;

  constructor(prefix: string, name: string, count: number) {
    if (!(Number.isInteger(count) && count >= 1)) throw new Error(`queue partitions must be a whole number >= 1, got ${count}`);
    this.anchorQueueName = `${name}-anchor`;
    if (count === 1) {
      this.partitions = [new QueueKeys(`${prefix}:${name}:inf:`)];
    } else {
      const bare = prefix.replace(/[{}]/g, "");
      this.partitions = spreadTags(`${bare}:${name}`, count).map((tag) => new QueueKeys(`${bare}:${name}:inf:{${tag}}:`));
    }
  }

  recordPartition(id: string): number {
    return this.partitions.length === 1 ? 0 : crc16(id) % this.partitions.length;
  }

  /** The id a batch formed in `partition` gets: `id` itself with one partition. */
  batchIdIn(id: string, partition: number): string {
    return this.partitions.length === 1 ? id : `${id}-p${partition}`;
  }

  batchPartition(batchId: string): number {
    if (this.partitions.length === 1) return 0;
    const p = Number(BATCH_PARTITION.exec(batchId)?.[1]);
    if (!(p < this.partitions.length)) throw new Error(`batch ${batchId} names no partition of this queue`);
    return p;
  }
}
