import { open, type Database, type RootDatabase } from "lmdb";
import type { LedgerEntry, SettlementLedger } from "@facilitator/core";
import { nextStored } from "./entry.ts";

/**
 * Settlement ledger in an LMDB directory: the embedded default, no server needed. LMDB has one writer
 * at a time (across processes too), so a read-compare-write inside one write transaction is an atomic
 * compare-and-set. `overlappingSync: false` makes every commit fsync before its promise resolves
 * (lmdb-js otherwise defers the flush past the commit on Linux).
 */
export class EmbeddedLedger implements SettlementLedger {
  private readonly root: RootDatabase;
  private readonly entries: Database<LedgerEntry, string>;
  /** Keys in `broadcast` state, kept in the same transaction as the entry, so counting needs no scan. */
  private readonly unconfirmed: Database<true, string>;

  constructor(readonly path: string) {
    this.root = open({ path, overlappingSync: false, noSync: false, maxDbs: 4 });
    this.entries = this.root.openDB<LedgerEntry, string>({ name: "entries" });
    this.unconfirmed = this.root.openDB<true, string>({ name: "unconfirmed" });
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

  async close(): Promise<void> {
    await this.root.close();
  }
}
