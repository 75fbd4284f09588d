/**
 * Where a BullQueue keeps its state in Redis: everything of one deployment under
 * `{prefix}:{name}:inf:`, beside BullMQ's own keys for the anchor queue (`{prefix}:{name}-anchor:`).
 */
import type { Lane } from "../records.ts";

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
  /** The BullMQ queue whose jobs are batches (its keys live under the same prefix). */
  readonly anchorQueueName: string;
  private readonly base: string;

  constructor(prefix: string, name: string) {
    this.base = `${prefix}:${name}:inf:`;
    this.recordPrefix = `${this.base}rec:`;
    this.counts = `${this.base}counts`;
    this.open = `${this.base}open`;
    this.parked = `${this.base}parked`;
    this.unscheduled = `${this.base}unscheduled`;
    this.anchorQueueName = `${name}-anchor`;
  }

  /** Hash: id, record (JSON), status, enqueuedAt; then batchId, anchor (JSON) or error (JSON). */
  record(id: string): string {
    return this.recordPrefix + id;
  }

  /** List of the ids of a lane's records waiting for a batch, oldest first. */
  waiting(lane: Lane): string {
    return `${this.base}waiting:${lane}`;
  }

  /** Hash: doc (the Batch as JSON), version, state (kept outside doc so the scripts can compare them). */
  batch(id: string): string {
    return `${this.base}batch:${id}`;
  }

  /** String: one intake call's answer, kept for a resend of that call. */
  answer(callId: string): string {
    return `${this.base}answer:${callId}`;
  }
}
