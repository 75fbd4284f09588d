/** A BazaarStore in a Map, for unit tests of the catalogue; it passes the same contract as the real stores. */
import type { BazaarStore, PutResult, StoredResource } from "../types.ts";

export class MemoryBazaarStore implements BazaarStore {
  private readonly records = new Map<string, StoredResource>();
  /** Every put, in order (tests look at what was written). */
  readonly puts: StoredResource[] = [];

  async get(id: string, now: number): Promise<StoredResource | undefined> {
    const r = this.records.get(id);
    return r && r.expiresAt > now ? structuredClone(r) : undefined;
  }

  async put(record: StoredResource, opts: { now: number; maxTotal: number }): Promise<PutResult> {
    const fresh = [...this.records.values()].filter((r) => r.expiresAt > opts.now);
    const current = fresh.find((r) => r.id === record.id);
    if (!current) {
      for (const g of record.groups) {
        if (fresh.filter((r) => r.groups.some((h) => h.key === g.key)).length >= g.max) return { ok: false, reason: g.reason };
      }
      if (fresh.length >= opts.maxTotal) return { ok: false, reason: "catalog_full" };
    }
    this.records.set(record.id, structuredClone(record));
    this.puts.push(structuredClone(record));
    return { ok: true, created: !current };
  }

  async list(now: number): Promise<StoredResource[]> {
    return [...this.records.values()].filter((r) => r.expiresAt > now).map((r) => structuredClone(r));
  }

  async close(): Promise<void> {}
}
