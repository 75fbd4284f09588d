import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { LedgerEntry } from "@facilitator/core";
import { LmdbLedger } from "./lmdb-ledger.ts";
import { describeLedgerContract } from "./testing/ledger-contract-suite.ts";

const dirs: string[] = [];
const freshDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "ledger-"));
  dirs.push(dir);
  return dir;
};

/** A clock the test moves by hand: LMDB has no expiry of its own, the ledger reads this one. */
const manualClock = () => {
  let t = Date.now();
  return { now: () => t, elapse: async (ms: number) => void (t += ms) };
};

describeLedgerContract("LmdbLedger", {
  async create() {
    return new LmdbLedger(freshDir());
  },
  async another(ledger) {
    return new LmdbLedger((ledger as LmdbLedger).path);
  },
  async reopen(ledger) {
    await ledger.close();
    return new LmdbLedger((ledger as LmdbLedger).path);
  },
  async createWithRetention(retentionMs) {
    const clock = manualClock();
    return { ledger: new LmdbLedger(freshDir(), { retentionMs, now: clock.now }), ...clock };
  },
  async cleanup() {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  },
});

describe("LmdbLedger retention", () => {
  const opened: LmdbLedger[] = [];
  afterAll(async () => {
    for (const l of opened) await l.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const entry = (key: string, state: LedgerEntry["state"], over: Partial<LedgerEntry> = {}) =>
    ({ key, state, network: "eip155:84532", updatedAt: 0, ...over }) as Omit<LedgerEntry, "version">;

  it("removes a backlog of expired entries a few per write, and the expiry survives a reopen", async () => {
    const clock = manualClock();
    const dir = freshDir();
    let ledger = new LmdbLedger(dir, { retentionMs: 1_000, now: clock.now });
    const keys = Array.from({ length: 30 }, (_, i) => `done-${i}`);
    for (const k of keys) await ledger.compareAndSet(entry(k, "success"), 0);
    await ledger.close();
    ledger = new LmdbLedger(dir, { retentionMs: 1_000, now: clock.now });
    opened.push(ledger);
    await clock.elapse(2_000);

    await ledger.compareAndSet(entry("trigger-0", "claimed"), 0);
    const left = async () => (await Promise.all(keys.map((k) => ledger.get(k)))).filter(Boolean).length;
    const afterOne = await left();
    expect(afterOne).toBeLessThan(keys.length); // some went with the first write
    expect(afterOne).toBeGreaterThan(0); // but a write does a bounded amount of work
    for (let i = 1; i <= keys.length; i++) await ledger.compareAndSet(entry(`trigger-${i}`, "claimed"), 0);
    expect(await left()).toBe(0);
  });

  it("keeps an entry with keepUntil until then, then forgets it", async () => {
    const clock = manualClock();
    const ledger = new LmdbLedger(freshDir(), { retentionMs: 1_000, now: clock.now });
    opened.push(ledger);
    await ledger.compareAndSet(entry("permit", "success", { keepUntil: clock.now() + 60_000 }), 0);
    await clock.elapse(30_000);
    await ledger.compareAndSet(entry("t1", "claimed"), 0);
    expect(await ledger.get("permit")).toBeDefined();
    await clock.elapse(31_000);
    await ledger.compareAndSet(entry("t2", "claimed"), 0);
    expect(await ledger.get("permit")).toBeUndefined();
  });

  it("without a retention keeps finished entries for good", async () => {
    const clock = manualClock();
    const ledger = new LmdbLedger(freshDir(), { now: clock.now });
    opened.push(ledger);
    await ledger.compareAndSet(entry("done", "failed"), 0);
    await clock.elapse(365 * 24 * 3_600_000);
    await ledger.compareAndSet(entry("t", "claimed"), 0);
    expect(await ledger.get("done")).toMatchObject({ state: "failed" });
  });
});
