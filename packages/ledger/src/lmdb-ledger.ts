import { open, type Database, type RootDatabase } from "lmdb";
import type { LedgerEntry, SettlementLedger } from "@facilitator/core";
import { keepForMs, nextStored } from "./entry.ts";

export interface LmdbLedgerOptions {
  /** How long a finished entry is kept (ms, see `isFinished`); undefined or 0 keeps every entry for good. */
  retentionMs?: number;
  /** Clock in ms (tests). */
  now?: () => number;
}

/**
 * Expired entries removed by each write, at most. LMDB has no expiry of its own: each write adds at
 * most one expiry, so removing a few more keeps the store bounded without a timer or a full scan.
 */
const SWEEP_PER_WRITE = 4;

type ExpiryKey = [expiresAt: number, key: string];

/**
 * Settlement ledger in an LMDB directory: the embedded default, no server needed. LMDB has one writer
 * at a time (across processes too), so a read-compare-write inside one write transaction is an atomic
 * compare-and-set. `overlappingSync: false` makes every commit fsync before its promise resolves
 * (lmdb-js otherwise defers the flush past the commit on Linux).
 */
export class LmdbLedger implements SettlementLedger {
  private readonly root: RootDatabase;
  private readonly entries: Database<LedgerEntry, string>;
  /** Keys in `broadcast` state, kept in the same transaction as the entry, so counting needs no scan. */
  private readonly unconfirmed: Database<true, string>;
  /** When each expiring (finished) entry expires, and the same ordered by time for the sweep. */
  private readonly expiresAt: Database<number, string>;
  private readonly expiring: Database<true, ExpiryKey>;
  private readonly retentionMs: number | undefined;
  private readonly now: () => number;

  constructor(
    readonly path: string,
    opts: LmdbLedgerOptions = {},
  ) {
    this.root = open({ path, overlappingSync: false, noSync: false, maxDbs: 8 });
    this.entries = this.root.openDB<LedgerEntry, string>({ name: "entries" });
    this.unconfirmed = this.root.openDB<true, string>({ name: "unconfirmed" });
    this.expiresAt = this.root.openDB<number, string>({ name: "expires-at" });
    this.expiring = this.root.openDB<true, ExpiryKey>({ name: "expiring" });
    this.retentionMs = opts.retentionMs;
    this.now = opts.now ?? Date.now;
  }

  async get(key: string): Promise<LedgerEntry | undefined> {
    return this.entries.get(key);
  }

  compareAndSet(next: Omit<LedgerEntry, "version">, expectedVersion: number): Promise<LedgerEntry | undefined> {
    const stored = nextStored(next, expectedVersion);
    return this.root.transaction(() => {
      if ((this.entries.get(stored.key)?.version ?? 0) !== expectedVersion) return undefined;
      this.entries.put(stored.key, stored);
      if (stored.state === "broadcast") this.unconfirmed.put(stored.key, true);
      else this.unconfirmed.remove(stored.key);
      const now = this.now();
      this.setExpiry(stored.key, keepForMs(stored, this.retentionMs, now), now);
      this.sweep(now);
      return stored;
    });
  }

  release(key: string, expectedVersion: number): Promise<boolean> {
    return this.root.transaction(() => {
      const current = this.entries.get(key);
      if (!current || current.state !== "claimed" || current.version !== expectedVersion) return false;
      this.entries.remove(key);
      this.unconfirmed.remove(key);
      return true;
    });
  }

  async countUnconfirmed(): Promise<number> {
    return this.unconfirmed.getKeysCount();
  }

  async listUnconfirmed(limit: number, after?: string): Promise<LedgerEntry[]> {
    const entries: LedgerEntry[] = [];
    for (const key of this.unconfirmed.getKeys({ start: after, limit: limit + 1 })) {
      if (key === after || entries.length === limit) continue;
      const entry = this.entries.get(key);
      if (entry?.state === "broadcast") entries.push(entry);
    }
    return entries;
  }

  async close(): Promise<void> {
    await this.root.close();
  }

  /** Inside a write transaction: `key` expires `keepMs` from `now`, or never. */
  private setExpiry(key: string, keepMs: number | undefined, now: number): void {
    const previous = this.expiresAt.get(key);
    if (previous !== undefined) this.expiring.remove([previous, key]);
    if (keepMs === undefined) {
      this.expiresAt.remove(key);
      return;
    }
    this.expiresAt.put(key, now + keepMs);
    this.expiring.put([now + keepMs, key], true);
  }

  /** Inside a write transaction: removes up to SWEEP_PER_WRITE entries whose time has come. */
  private sweep(now: number): void {
    const due = [...this.expiring.getKeys({ end: [now + 1], limit: SWEEP_PER_WRITE })];
    for (const [expiresAt, key] of due) {
      this.expiring.remove([expiresAt, key]);
      this.expiresAt.remove(key);
      this.entries.remove(key);
    }
  }
}
