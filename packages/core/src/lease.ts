/**
 * A settlement-ledger entry held by the settle working on it, under a short lease it keeps renewing.
 *
 * The lease keeps other settles off a payment while its holder works, and frees the payment when the
 * holder dies. A lease as long as the longest wait (a receipt can take 30 s) would leave a crashed
 * holder's payment stuck that long; a short lease renewed every leaseMs/3 keeps a live holder's payment
 * its own (it survives a stall of two thirds of a lease) and frees a dead holder's within one lease.
 *
 * Every write of the holder, renewals included, goes out one at a time as a compare-and-set on the
 * version its previous write stored, so a renewal never races the holder's own writes. A write that
 * loses means someone else wrote the entry (a settle that took the payment over after this holder
 * stalled past its lease): the holder stops renewing, and every later write of it loses too, so it can
 * never overwrite what the new holder records.
 */
import type { LedgerEntry, SettlementLedger } from "./mechanism.ts";

/** Long enough for a busy event loop and clock skew between processes, short enough for a quick takeover. */
export const DEFAULT_LEASE_MS = 5_000;

export interface LeaseOptions {
  leaseMs: number;
  /** Clock in ms (tests). */
  now?: () => number;
}

type Changes = Partial<Omit<LedgerEntry, "key" | "version" | "updatedAt">>;

export class HeldEntry {
  private latest: LedgerEntry;
  private taken = false;
  private renewing = false;
  private timer: ReturnType<typeof setInterval> | undefined;
  /** The holder's writes, one after the other. */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly leaseMs: number;
  private readonly now: () => number;

  /**
   * Holds `entry` as read, without a lease (a final entry written once more). Use `take` to hold one
   * that others must keep off.
   */
  constructor(
    private readonly ledger: SettlementLedger,
    entry: LedgerEntry,
    opts: LeaseOptions,
  ) {
    this.latest = entry;
    this.leaseMs = opts.leaseMs;
    this.now = opts.now ?? Date.now;
  }

  /**
   * Writes `next` with a fresh lease if the stored version is still `expectedVersion` (0: absent),
   * and keeps renewing it. Undefined when another writer got there first.
   */
  static async take(ledger: SettlementLedger, next: Omit<LedgerEntry, "version" | "leaseUntil" | "updatedAt">, expectedVersion: number, opts: LeaseOptions): Promise<HeldEntry | undefined> {
    const now = opts.now ?? Date.now;
    const stored = await ledger.compareAndSet({ ...next, leaseUntil: now() + opts.leaseMs, updatedAt: now() }, expectedVersion);
    if (!stored) return undefined;
    const held = new HeldEntry(ledger, stored, opts);
    held.timer = setInterval(() => held.renew(), Math.max(1, Math.floor(opts.leaseMs / 3)));
    held.timer.unref();
    return held;
  }

  /** The entry as this holder last stored (or read) it. */
  get entry(): LedgerEntry {
    return this.latest;
  }

  /** True once another writer changed the entry: nothing this holder writes is stored any more. */
  get lost(): boolean {
    return this.taken;
  }

  /** Writes `changes` and goes on holding (the lease starts again). Undefined when the entry was taken over. */
  write(changes: Changes): Promise<LedgerEntry | undefined> {
    return this.store(changes, true);
  }

  /** Stops renewing, then writes `changes` (an outcome, or a lease given back) as they are. */
  end(changes: Changes): Promise<LedgerEntry | undefined> {
    this.stop();
    return this.store(changes, false);
  }

  /** Stops renewing and removes the entry, if it is still the claim this holder stored. */
  release(): Promise<boolean> {
    this.stop();
    return this.serially(async () => {
      if (this.taken) return false;
      const released = await this.ledger.release(this.latest.key, this.latest.version);
      if (!released) this.taken = true;
      return released;
    });
  }

  /** Stops renewing; the lease then runs out on its own. Idempotent. */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private renew(): void {
    if (this.renewing) return; // the last renewal is still waiting for the store
    this.renewing = true;
    // A renewal that fails to reach the store is simply tried again at the next tick.
    void this.store({}, true)
      .catch(() => undefined)
      .finally(() => (this.renewing = false));
  }

  private store(changes: Changes, holding: boolean): Promise<LedgerEntry | undefined> {
    return this.serially(async () => {
      if (this.taken) return undefined;
      const { version, ...current } = this.latest;
      const now = this.now();
      const lease = holding ? { leaseUntil: now + this.leaseMs } : {};
      const stored = await this.ledger.compareAndSet({ ...current, ...changes, ...lease, updatedAt: now }, version);
      if (stored) {
        this.latest = stored;
      } else {
        this.taken = true;
        this.stop();
      }
      return stored;
    });
  }

  private serially<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work);
    this.queue = run.catch(() => undefined);
    return run;
  }
}
