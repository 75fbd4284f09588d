/**
 * Leases on batches. A leased batch is a BullMQ job whose lock this process holds, renewed every third
 * of the lock duration; once a renewal is refused (the lock lapsed and another worker took the job),
 * every later write to the batch throws LeaseLostError.
 */
import type { Job } from "bullmq";
import { LeaseLostError } from "../queue.ts";

interface Lease {
  job: Job;
  token: string;
  timer: NodeJS.Timeout;
  lost: boolean;
}

export class BatchLeases {
  private readonly held = new Map<string, Lease>();

  constructor(private readonly lockDurationMs: number) {}

  /** Holds `job`, locked with `token`, as the lease of `batchId` and keeps its lock alive. */
  hold(batchId: string, job: Job, token: string): void {
    const lease: Lease = { job, token, lost: false, timer: setInterval(() => this.renew(lease), Math.floor(this.lockDurationMs / 3)) };
    this.held.set(batchId, lease);
  }

  /** Throws LeaseLostError unless this process still holds the batch. */
  assertHeld(batchId: string): void {
    const lease = this.held.get(batchId);
    if (!lease || lease.lost) throw new LeaseLostError(batchId);
  }

  /** Lets the batch go and moves its job on with `end`; does nothing if it is not held. */
  async end(batchId: string, end: (job: Job, token: string) => Promise<unknown>): Promise<void> {
    const lease = this.held.get(batchId);
    if (!lease) return;
    this.drop(batchId);
    // The batch's state is already recorded; if this fails, the job stalls back and is tidied up later.
    await end(lease.job, lease.token).catch(() => undefined);
  }

  /** Lets the batch go without touching its job (its lock lapses and the job stalls back). */
  drop(batchId: string): void {
    const lease = this.held.get(batchId);
    if (lease) clearInterval(lease.timer);
    this.held.delete(batchId);
  }

  dropAll(): void {
    for (const id of [...this.held.keys()]) this.drop(id);
  }

  private renew(lease: Lease): void {
    lease.job.extendLock(lease.token, this.lockDurationMs).then(
      (ok) => {
        if (!ok) lease.lost = true;
      },
      () => undefined, // Redis unreachable: try again next tick; the lock may lapse and another worker resume
    );
  }
}
