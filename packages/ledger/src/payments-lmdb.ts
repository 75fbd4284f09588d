import { open, type Database, type RootDatabase } from "lmdb";
import {
  addCounters, countersFrom, countersJson, dayOf,
  type Bucket, type Delivery, type PaymentRecord, type PaymentsStore, type RecentQuery, type WritePlan,
} from "@facilitator/payments";

export interface LmdbPaymentsStoreOptions {
  /** How long a record (and a finished delivery) is kept, ms. */
  retentionMs: number;
  /** Clock in ms (tests): reads hide what this clock says has expired. */
  now?: () => number;
}

type DayKey = [day: string, payTo: string, network: string, asset: string];
type ExpiryKey = [expiresAt: number, kind: "p" | "d", id: string];

/** Expired entries removed per write at most (each write adds at most a few): bounded work, no timer. */
const SWEEP_PER_WRITE = 8;
/** Index entries looked at per `recent` query at most when a second filter skips some. */
const SCAN_PER_QUERY = 5_000;
const MAX_TIME = Number.MAX_SAFE_INTEGER;

/**
 * The payments record in an LMDB directory of its own (beside the ledger's: LMDB has one writer per
 * environment, and these writes must never queue a settlement's). Every write of a record, its indexes,
 * its day total and its new deliveries is one transaction; expired entries go a few per write.
 */
export class LmdbPaymentsStore implements PaymentsStore {
  private readonly root: RootDatabase;
  private readonly records: Database<PaymentRecord, string>;
  /** [time, id], [network, time, id] and [outcome, time, id]: newest-first listings. */
  private readonly byTime: Database<true, [number, string]>;
  private readonly byNetwork: Database<true, [string, number, string]>;
  private readonly byOutcome: Database<true, [string, number, string]>;
  private readonly days: Database<Record<string, number | string>, DayKey>;
  private readonly outbox: Database<Delivery, string>;
  /** When each pending delivery is next due (or its lease ends), and the same ordered by time. */
  private readonly dueAt: Database<number, string>;
  private readonly due: Database<true, [number, string]>;
  private readonly expiring: Database<true, ExpiryKey>;
  private readonly retentionMs: number;
  private readonly clock: () => number;

  constructor(
    readonly path: string,
    opts: LmdbPaymentsStoreOptions,
  ) {
    this.root = open({ path, overlappingSync: false, noSync: false, maxDbs: 12 });
    this.records = this.root.openDB({ name: "records" });
    this.byTime = this.root.openDB({ name: "by-time" });
    this.byNetwork = this.root.openDB({ name: "by-network" });
    this.byOutcome = this.root.openDB({ name: "by-outcome" });
    this.days = this.root.openDB({ name: "days" });
    this.outbox = this.root.openDB({ name: "outbox" });
    this.dueAt = this.root.openDB({ name: "due-at" });
    this.due = this.root.openDB({ name: "due" });
    this.expiring = this.root.openDB({ name: "expiring" });
    this.retentionMs = opts.retentionMs;
    this.clock = opts.now ?? Date.now;
  }

  write(id: string, plan: (current: PaymentRecord | undefined) => WritePlan | undefined, now: number): Promise<PaymentRecord | undefined> {
    return this.root.transaction(() => {
      this.sweep(now);
      const stored = this.records.get(id);
      if (stored && this.expired(stored, now)) this.unlink(stored);
      const current = stored && !this.expired(stored, now) ? stored : undefined;
      const p = plan(current);
      if (!p) return undefined;
      const record: PaymentRecord = { ...p.record, version: (current?.version ?? 0) + 1 };
      if (current) this.unindex(current);
      else this.expiring.put([record.time + this.retentionMs, "p", id], true);
      this.records.put(id, record);
      this.index(record);
      const day: DayKey = [p.bucket.day, p.bucket.payTo, p.bucket.network, p.bucket.asset];
      this.days.put(day, countersJson(addCounters(countersFrom(this.days.get(day) ?? {}), p.delta)));
      for (const d of p.deliveries) {
        if (this.outbox.get(d.id)) continue; // made before: a notice goes out once
        this.outbox.put(d.id, d);
        this.schedule(d.id, d.nextAt);
      }
      return record;
    });
  }

  async get(id: string): Promise<PaymentRecord | undefined> {
    const r = this.records.get(id);
    return r && !this.expired(r, this.clock()) ? r : undefined;
  }

  async recent(q: RecentQuery): Promise<PaymentRecord[]> {
    const before = q.before ?? MAX_TIME;
    // The narrower index drives the scan; the other filter is checked on each record.
    const ids: Iterable<string> = q.outcome
      ? mapKeys(this.byOutcome.getKeys({ start: [q.outcome, before], end: [q.outcome], reverse: true, limit: SCAN_PER_QUERY }), (k) => k[2])
      : q.network
        ? mapKeys(this.byNetwork.getKeys({ start: [q.network, before], end: [q.network], reverse: true, limit: SCAN_PER_QUERY }), (k) => k[2])
        : mapKeys(this.byTime.getKeys({ start: [before], reverse: true, limit: SCAN_PER_QUERY }), (k) => k[1]);
    const out: PaymentRecord[] = [];
    const now = this.clock();
    for (const id of ids) {
      const r = this.records.get(id);
      if (!r || this.expired(r, now) || (q.network && r.network !== q.network)) continue;
      out.push(r);
      if (out.length >= q.limit) break;
    }
    return out;
  }

  async totals(days: readonly string[], payTo?: string): Promise<Bucket[]> {
    const out: Bucket[] = [];
    const keepFrom = dayOf(this.clock() - this.retentionMs);
    for (const day of days) {
      if (day < keepFrom) continue;
      const range = payTo ? { start: [day, payTo], end: [day, `${payTo}\u0000`] } : { start: [day], end: [`${day}\u0000`] };
      for (const { key, value } of this.days.getRange(range as { start: DayKey; end: DayKey })) {
        if (payTo && key[1] !== payTo) continue;
        out.push({ day: key[0], payTo: key[1], network: key[2], asset: key[3], counters: countersFrom(value) });
      }
    }
    return out;
  }

  async deliveries(ids: readonly string[]): Promise<Delivery[]> {
    return ids.map((id) => this.outbox.get(id)).filter((d): d is Delivery => d !== undefined);
  }

  claimDeliveries(now: number, leaseMs: number, limit: number): Promise<Delivery[]> {
    return this.root.transaction(() => {
      const claimed: Delivery[] = [];
      for (const [, id] of [...this.due.getKeys({ end: [now, "\uffff"], limit })]) {
        const d = this.outbox.get(id);
        if (!d || d.state !== "pending") {
          this.unschedule(id);
          continue;
        }
        this.schedule(id, now + leaseMs);
        claimed.push(d);
      }
      return claimed;
    });
  }

  finishDelivery(d: Delivery, now: number): Promise<boolean> {
    return this.root.transaction(() => {
      const stored = this.outbox.get(d.id);
      if (!stored || stored.attempts !== d.attempts - 1) return false;
      this.outbox.put(d.id, d);
      if (d.state === "pending") this.schedule(d.id, d.nextAt);
      else {
        this.unschedule(d.id);
        this.expiring.put([now + this.retentionMs, "d", d.id], true);
      }
      return true;
    });
  }

  async close(): Promise<void> {
    await this.root.close();
  }

  private expired(r: PaymentRecord, now: number): boolean {
    return r.time + this.retentionMs <= now;
  }

  private index(r: PaymentRecord): void {
    this.byTime.put([r.time, r.id], true);
    this.byNetwork.put([r.network, r.time, r.id], true);
    this.byOutcome.put([r.outcome, r.time, r.id], true);
  }

  private unindex(r: PaymentRecord): void {
    this.byTime.remove([r.time, r.id]);
    this.byNetwork.remove([r.network, r.time, r.id]);
    this.byOutcome.remove([r.outcome, r.time, r.id]);
  }

  private unlink(r: PaymentRecord): void {
    this.unindex(r);
    this.records.remove(r.id);
  }

  /** Inside a write transaction: delivery `id` is next due at `at`. */
  private schedule(id: string, at: number): void {
    this.unschedule(id);
    this.dueAt.put(id, at);
    this.due.put([at, id], true);
  }

  private unschedule(id: string): void {
    const at = this.dueAt.get(id);
    if (at === undefined) return;
    this.due.remove([at, id]);
    this.dueAt.remove(id);
  }

  /** Inside a write transaction: a few expired records and finished deliveries, and day totals past the retention. */
  private sweep(now: number): void {
    for (const [at, kind, id] of [...this.expiring.getKeys({ end: [now + 1], limit: SWEEP_PER_WRITE })]) {
      this.expiring.remove([at, kind, id]);
      if (kind === "d") this.outbox.remove(id);
      else {
        const r = this.records.get(id);
        if (r && this.expired(r, now)) this.unlink(r);
      }
    }
    // A day is kept while any of it is within the retention.
    for (const key of [...this.days.getKeys({ end: [dayOf(now - this.retentionMs)], limit: SWEEP_PER_WRITE })]) this.days.remove(key);
  }
}

function* mapKeys<K, T>(keys: Iterable<K>, f: (k: K) => T): Iterable<T> {
  for (const k of keys) yield f(k);
}
