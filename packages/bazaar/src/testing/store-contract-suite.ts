/**
 * The contract every BazaarStore keeps, as one vitest suite taking a factory, so the LMDB, Redis and
 * in-memory stores run the very same checks. Imported by tests only, as `@facilitator/bazaar/testing`.
 * Time is an argument of every call, so expiry is tested without waiting.
 */
import { afterAll, describe, expect, it } from "vitest";
import type { BazaarStore, QuotaGroup, StoredResource } from "../types.ts";

export { MemoryBazaarStore } from "./memory-store.ts";

export interface BazaarStoreHarness {
  /** A fresh, empty store. */
  create(): Promise<BazaarStore>;
  /** A second handle onto the store behind `store` (another connection or environment handle). */
  another(store: BazaarStore): Promise<BazaarStore>;
  /** Closes `store` (and restarts what is under it, where that means something); a handle onto the same data. */
  reopen?(store: BazaarStore): Promise<BazaarStore>;
  cleanup(): Promise<void>;
}

const T0 = 1_800_000_000_000;
const TTL = 60_000;
let counter = 0;

/** A catalogue record for tests: `id` unique unless given, in `groups`, fresh until `expiresAt`. */
export function storedResource(over: Partial<StoredResource> & { groups?: QuotaGroup[] } = {}): StoredResource {
  const id = over.id ?? `r${++counter}-${Math.random().toString(16).slice(2)}`;
  return {
    id,
    expiresAt: T0 + TTL,
    groups: [{ key: "payto:0xaaaa", max: 100, reason: "payto_route_limit" }],
    item: {
      resource: `https://api.example.com/${id}`,
      type: "http",
      x402Version: 2,
      lastUpdated: new Date(T0).toISOString(),
      accepts: [{ scheme: "exact", network: "eip155:84532", amount: "1000", asset: "0x01", payTo: "0xaaaa", maxTimeoutSeconds: 60 }],
      extensions: { bazaar: { info: { input: { type: "http", method: "GET" } }, schema: { type: "object" } } },
    },
    ...over,
  };
}

const group = (key: string, max: number, reason = `${key}_full`): QuotaGroup => ({ key, max, reason });

export function describeBazaarStoreContract(name: string, harness: BazaarStoreHarness): void {
  describe(`BazaarStore contract: ${name}`, () => {
    const opened: BazaarStore[] = [];
    const fresh = async () => {
      const s = await harness.create();
      opened.push(s);
      return s;
    };
    afterAll(async () => {
      for (const s of opened) await s.close().catch(() => undefined);
      await harness.cleanup();
    });
    const at = { now: T0, maxTotal: 1_000 };

    it("stores a record whole and serves it until it expires, never after", async () => {
      const store = await fresh();
      const hostile = '<script>alert("x")</script> \u202e ünïcødé "quotes" \\ \n';
      const r = storedResource({ item: { ...storedResource().item, description: hostile, tags: ["<b>", "x"] } });
      expect(await store.put(r, at)).toEqual({ ok: true, created: true });
      expect(await store.get(r.id, T0)).toEqual(r);
      expect((await store.list(T0)).map((x) => x.id)).toContain(r.id);
      expect(await store.get("absent", T0)).toBeUndefined();
      expect(await store.get(r.id, r.expiresAt)).toBeUndefined();
      expect((await store.list(r.expiresAt)).map((x) => x.id)).not.toContain(r.id);
    });

    it("replaces a fresh record on a refresh, whatever the quotas, and says it was not created", async () => {
      const store = await fresh();
      const g = [group("payto:0xfull", 1)];
      const r = storedResource({ groups: g });
      await store.put(r, at);
      const refreshed = { ...r, expiresAt: T0 + 2 * TTL, item: { ...r.item, lastUpdated: new Date(T0 + 5).toISOString() } };
      expect(await store.put(refreshed, { now: T0 + 5, maxTotal: 1 })).toEqual({ ok: true, created: false });
      expect(await store.get(r.id, T0 + TTL + 1)).toEqual(refreshed);
    });

    it("refuses a new record past a group's quota with that group's reason, and counts only fresh records", async () => {
      const store = await fresh();
      const g = [group("payto:0xquota", 2, "payto_route_limit"), group("payer:0xp", 10, "payer_route_limit")];
      const first = storedResource({ groups: g, expiresAt: T0 + 10 });
      expect((await store.put(first, at)).ok).toBe(true);
      expect((await store.put(storedResource({ groups: g }), at)).ok).toBe(true);
      const third = storedResource({ groups: g });
      expect(await store.put(third, at)).toEqual({ ok: false, reason: "payto_route_limit" });
      expect(await store.get(third.id, T0)).toBeUndefined();
      // another payee's quota is its own, even one whose key starts with this one's
      expect((await store.put(storedResource({ groups: [group("payto:0xquota1", 2)] }), at)).ok).toBe(true);
      // once the first expired, its place is free
      expect(await store.put(third, { ...at, now: T0 + 10 })).toEqual({ ok: true, created: true });
    });

    it("names the first full group when several are full", async () => {
      const store = await fresh();
      const g = [group("payto:0xa1", 1, "payto_route_limit"), group("payer:0xb1", 1, "payer_route_limit")];
      await store.put(storedResource({ groups: g }), at);
      expect(await store.put(storedResource({ groups: g }), at)).toEqual({ ok: false, reason: "payto_route_limit" });
      expect(await store.put(storedResource({ groups: [group("payto:0xa2", 5), g[1]!] }), at)).toEqual({ ok: false, reason: "payer_route_limit" });
    });

    it("refuses a new record past the total with catalog_full; an expired record counts as new", async () => {
      const store = await fresh();
      const old = storedResource({ groups: [group("payto:0xt1", 10)], expiresAt: T0 + 10 });
      await store.put(old, at);
      await store.put(storedResource({ groups: [group("payto:0xt2", 10)] }), at);
      expect(await store.put(storedResource({ groups: [group("payto:0xt3", 10)] }), { now: T0, maxTotal: 2 })).toEqual({ ok: false, reason: "catalog_full" });
      // the old one expired: room for one, and the old one itself comes back as new, under its quotas
      const back = { ...old, expiresAt: T0 + TTL };
      expect(await store.put(back, { now: T0 + 10, maxTotal: 2 })).toEqual({ ok: true, created: true });
      expect(await store.put(storedResource({ groups: [group("payto:0xt3", 10)] }), { now: T0 + 10, maxTotal: 2 })).toEqual({ ok: false, reason: "catalog_full" });
    });

    it("holds a quota under concurrent writers on two handles", async () => {
      const a = await fresh();
      const b = await harness.another(a);
      opened.push(b);
      const g = [group("payto:0xrace", 5, "payto_route_limit")];
      const results = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b).put(storedResource({ groups: g }), at)));
      expect(results.filter((r) => r.ok)).toHaveLength(5);
      expect(results.filter((r) => !r.ok).every((r) => !r.ok && r.reason === "payto_route_limit")).toBe(true);
      expect((await b.list(T0)).filter((r) => r.groups[0]!.key === "payto:0xrace")).toHaveLength(5);
    });

    if (harness.reopen) {
      it("keeps every acknowledged write across a reopen", async () => {
        const store = await fresh();
        const records = Array.from({ length: 5 }, () => storedResource({ groups: [group("payto:0xkeep", 10)] }));
        for (const r of records) await store.put(r, at);
        const after = await harness.reopen!(store);
        opened.push(after);
        for (const r of records) expect(await after.get(r.id, T0)).toEqual(r);
        // and its quota still counts them
        expect(await after.put(storedResource({ groups: [group("payto:0xkeep", 5, "payto_route_limit")] }), at)).toEqual({ ok: false, reason: "payto_route_limit" });
      });
    }
  });
}
