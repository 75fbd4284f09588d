import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { lastDays } from "@facilitator/payments";
import { another, describePaymentsStoreContract, record, T0 } from "@facilitator/payments/testing";
import { LmdbPaymentsStore } from "./payments-lmdb.ts";

const dirs: string[] = [];
/** The embedded store reads expiry from its clock: the tests move it by hand. */
const clocks = new WeakMap<object, { t: number }>();
const DAY = 86_400_000;

function open(path: string, retentionMs: number, clock = { t: T0 }) {
  const store = new LmdbPaymentsStore(path, { retentionMs, now: () => clock.t });
  clocks.set(store, clock);
  return store;
}
const freshDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "payments-"));
  dirs.push(dir);
  return dir;
};
const retentions = new WeakMap<object, number>();

describePaymentsStoreContract("LmdbPaymentsStore", {
  async create(retentionMs = 30 * DAY) {
    const store = open(freshDir(), retentionMs);
    retentions.set(store, retentionMs);
    return store;
  },
  async another(store) {
    const s = store as LmdbPaymentsStore;
    const other = open(s.path, retentions.get(s)!, clocks.get(s));
    retentions.set(other, retentions.get(s)!);
    return other;
  },
  async reopen(store) {
    const s = store as LmdbPaymentsStore;
    await s.close();
    const again = open(s.path, retentions.get(s)!, clocks.get(s));
    retentions.set(again, retentions.get(s)!);
    return again;
  },
  async elapse(store, ms) {
    clocks.get(store)!.t += ms;
  },
  async cleanup() {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  },
});

describe("LmdbPaymentsStore day totals", () => {
  it("keeps a day while any of it is within the retention, then sweeps it with a later write", async () => {
    const clock = { t: T0 };
    const store = open(freshDir(), 2 * DAY, clock);
    await record(store, another({ now: T0 }));
    const day = lastDays(T0, 1);
    clock.t = T0 + 2 * DAY;
    expect(await store.totals(day)).toHaveLength(1);
    clock.t = T0 + 3 * DAY;
    expect(await store.totals(day)).toEqual([]);
    await record(store, another({ now: clock.t }));
    clock.t = T0; // the entry itself is gone, not only hidden
    expect(await store.totals(day)).toEqual([]);
    await store.close();
  });
});
