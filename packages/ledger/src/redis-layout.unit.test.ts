import { describe, expect, it } from "vitest";
import { keySlot } from "@facilitator/redis";
import { clusterReady, ledgerLayout } from "./redis-layout.ts";

const keys = Array.from({ length: 400 }, (_, i) => `eip155:84532:0xasset:0xpayer:0x${i.toString(16).padStart(64, "0")}`);

describe("ledgerLayout", () => {
  it("keeps a single Redis's names with one shard", () => {
    const l = ledgerLayout("x402:ledger:", 1);
    expect(l.entry("k1")).toBe("x402:ledger:entry:k1");
    expect(l.unconfirmed("k1")).toBe("x402:ledger:unconfirmed");
    expect(l.allUnconfirmed).toEqual(["x402:ledger:unconfirmed"]);
  });

  it("puts each entry in the slot of its shard's unconfirmed set, and spreads shards over the slot space", () => {
    const l = ledgerLayout("x402:ledger:", 16);
    for (const k of keys) expect(keySlot(l.entry(k))).toBe(keySlot(l.unconfirmed(k)));
    expect(new Set(keys.map((k) => l.unconfirmed(k)))).toEqual(new Set(l.allUnconfirmed));
    const slots = l.allUnconfirmed.map(keySlot);
    expect(new Set(slots).size).toBe(16);
    // One per sixteenth of the slots: three primaries with even ranges serve five or six each.
    for (const [lo, hi] of [[0, 5461], [5461, 10923], [10923, 16384]]) expect(slots.filter((s) => s >= lo! && s < hi!).length).toBeGreaterThanOrEqual(5);
  });

  it.each([
    ["x402:ledger:", 1, false],
    ["x402:{ledger}:", 1, true],
    ["x402:ledger:", 16, true],
  ])("on a cluster, prefix %s with %i shard(s): usable %s", (prefix, shards, ok) => {
    expect(clusterReady(prefix, shards)).toBe(ok);
  });

  it("refuses a shard count that is not a whole number >= 1", () => {
    expect(() => ledgerLayout("p:", 0)).toThrow(/shards/);
    expect(() => ledgerLayout("p:", 1.5)).toThrow(/shards/);
  });
});
