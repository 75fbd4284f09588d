import { open, type Database, type RootDatabase } from "lmdb";
import type { BazaarStore, PutResult, StoredResource } from "@facilitator/bazaar";

type ExpiryKey = [expiresAt: number, id: string];
type MemberKey = [group: string, id: string];

/**
 * The bazaar catalogue in an LMDB directory of its own (beside the ledger's, not in it: LMDB has one
 * writer per environment, and catalogue writes must not queue settlement writes). A put runs in one
 * write transaction: expired records are removed first, so every record and quota entry left is fresh
 * and the counts are plain range counts.
 */
export class LmdbBazaarStore implements BazaarStore {
  private readonly root: RootDatabase;
  private readonly resources: Database<StoredResource, string>;
  /** Every record by expiry time, for the sweep. */
  private readonly expiring: Database<true, ExpiryKey>;
  /** Quota group membership of every record. */
  private readonly members: Database<true, MemberKey>;

  constructor(readonly path: string) {
    this.root = open({ path, overlappingSync: false, noSync: false, maxDbs: 4 });
    this.resources = this.root.openDB<StoredResource, string>({ name: "resources" });
    this.expiring = this.root.openDB<true, ExpiryKey>({ name: "expiring" });
    this.members = this.root.openDB<true, MemberKey>({ name: "members" });
  }

  async get(id: string, now: number): Promise<StoredResource | undefined> {
    const r = this.resources.get(id);
    return r && r.expiresAt > now ? r : undefined;
  }

  put(record: StoredResource, opts: { now: number; maxTotal: number }): Promise<PutResult> {
    return this.root.transaction((): PutResult => {
      this.sweep(opts.now);
      const current = this.resources.get(record.id);
      if (current) {
        this.unlink(current);
      } else {
        for (const g of record.groups) {
          const count = this.members.getKeysCount({ start: [g.key], end: [g.key, "\uffff"] });
          if (count >= g.max) return { ok: false, reason: g.reason };
        }
        if (this.resources.getKeysCount() >= opts.maxTotal) return { ok: false, reason: "catalog_full" };
      }
      this.resources.put(record.id, record);
      this.expiring.put([record.expiresAt, record.id], true);
      for (const g of record.groups) this.members.put([g.key, record.id], true);
      return { ok: true, created: !current };
    });
  }

  async list(now: number): Promise<StoredResource[]> {
    const fresh: StoredResource[] = [];
    for (const { value } of this.resources.getRange()) if (value.expiresAt > now) fresh.push(value);
    return fresh;
  }

  async close(): Promise<void> {
    await this.root.close();
  }

  /** Inside a write transaction: removes every record whose time has come (a handful per write in practice). */
  private sweep(now: number): void {
    for (const [expiresAt, id] of [...this.expiring.getKeys({ end: [now + 1] })]) {
      this.expiring.remove([expiresAt, id]);
      const r = this.resources.get(id);
      if (r && r.expiresAt <= now) this.unlink(r);
    }
  }

  /** Inside a write transaction: `r` and its index entries, gone. */
  private unlink(r: StoredResource): void {
    this.resources.remove(r.id);
    this.expiring.remove([r.expiresAt, r.id]);
    for (const g of r.groups) this.members.remove([g.key, r.id]);
  }
}
