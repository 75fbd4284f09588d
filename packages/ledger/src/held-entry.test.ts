/**
 * core's HeldEntry (the lease a settle holds on its ledger entry) on both real stores: an LMDB
 * directory and a redis-server, each seen through two handles as two processes would.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HeldEntry, type LedgerEntry, type SettlementLedger } from "@facilitator/core";
import { startRedis, waitFor, type RedisServer } from "@facilitator/devnet";
import { LmdbLedger } from "./lmdb-ledger.ts";
import { RedisLedger } from "./redis.ts";

let redis: RedisServer;
const dirs: string[] = [];
const opened: SettlementLedger[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  for (const l of opened) await l.close().catch(() => undefined);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  await redis?.stop();
});

/** Two handles onto one fresh store: the holder's process and another one. */
const stores: Record<string, () => [SettlementLedger, SettlementLedger]> = {
  lmdb: () => {
    const dir = mkdtempSync(join(tmpdir(), "held-"));
    dirs.push(dir);
    const pair: [SettlementLedger, SettlementLedger] = [new LmdbLedger(dir), new LmdbLedger(dir)];
    opened.push(...pair);
    return pair;
  },
  redis: () => {
    const prefix = `held${opened.length}:`;
    const pair: [SettlementLedger, SettlementLedger] = [new RedisLedger({ redis: redis.url, prefix }), new RedisLedger({ redis: redis.url, prefix })];
    opened.push(...pair);
    return pair;
  },
};

let keys = 0;
const claim = (): Omit<LedgerEntry, "version" | "leaseUntil" | "updatedAt"> => ({ key: `k${++keys}`, state: "claimed", network: "eip155:84532", payer: "0xaa" });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(Object.keys(stores))("HeldEntry on the %s ledger", (kind) => {
  it("renews its lease while held, so the entry stays its own; later writes build on each renewal", async () => {
    const [ledger, other] = stores[kind]!();
    const held = (await HeldEntry.take(ledger, claim(), 0, { leaseMs: 1_500 }))!;
    const { key } = held.entry;
    await waitFor(async () => ((await other.get(key))?.version ?? 0) >= 4, "three renewals", 20_000);
    const seen = (await other.get(key))!;
    expect(seen).toMatchObject({ state: "claimed", payer: "0xaa" });
    expect(seen.leaseUntil).toBeGreaterThan(Date.now()); // another process still finds it held

    const recorded = await held.write({ state: "broadcast", transaction: "0x01", rawTransaction: "0x02" });
    expect(recorded).toMatchObject({ state: "broadcast", transaction: "0x01" });
    const done = await held.end({ state: "success", leaseUntil: undefined });
    expect(done).toMatchObject({ state: "success", transaction: "0x01" });
    expect(done!.leaseUntil).toBeUndefined();
    // Ended: nothing renews it any more.
    await sleep(1_200);
    expect((await other.get(key))?.version).toBe(done!.version);
  });

  it("never loses a write to its own renewals, however often they run", async () => {
    const [ledger] = stores[kind]!();
    const held = (await HeldEntry.take(ledger, claim(), 0, { leaseMs: 3 }))!; // renews every millisecond
    for (let i = 0; i < 60; i++) {
      expect(await held.write({ message: `step ${i}` }), `write ${i}`).toMatchObject({ message: `step ${i}` });
      await new Promise((r) => setImmediate(r)); // let renewals in between
    }
    expect(held.lost).toBe(false);
    expect(await held.end({ state: "success" })).toMatchObject({ state: "success", message: "step 59" });
  });

  it("once another process took the entry over, the holder stops renewing and can write nothing more", async () => {
    const [ledger, other] = stores[kind]!();
    const held = (await HeldEntry.take(ledger, claim(), 0, { leaseMs: 600 }))!;
    const { key } = held.entry;
    // What the other process does once it judges the lease run out (the holder stalled): take it at the version it read.
    let taker: HeldEntry | undefined;
    while (!taker) {
      const seen = (await other.get(key))!;
      taker = await HeldEntry.take(other, { ...claim(), key, message: "taker" }, seen.version, { leaseMs: 60_000 });
    }
    await waitFor(() => held.lost, "the holder's next renewal to lose", 20_000);

    expect(await held.write({ state: "broadcast", transaction: "0xdead", rawTransaction: "0xbeef" })).toBeUndefined();
    expect(await held.end({ state: "success" })).toBeUndefined();
    expect(await held.release()).toBe(false);
    await sleep(400); // a renewal period or two: still nothing from the old holder
    expect(await other.get(key)).toEqual(taker.entry);
    taker.stop();
  });

  it("releases the claim it holds, at whatever version its renewals reached", async () => {
    const [ledger, other] = stores[kind]!();
    const held = (await HeldEntry.take(ledger, claim(), 0, { leaseMs: 300 }))!;
    const { key } = held.entry;
    await waitFor(async () => ((await other.get(key))?.version ?? 0) >= 3, "two renewals", 20_000);
    expect(await held.release()).toBe(true);
    // Released means another process can claim it afresh. (A plain LMDB read may still be served from
    // a read snapshot taken before the release; the compare-and-set reads inside its write transaction.)
    expect(await other.compareAndSet({ ...held.entry, state: "claimed", updatedAt: Date.now() }, 0)).toMatchObject({ key, version: 1 });
  });
});
