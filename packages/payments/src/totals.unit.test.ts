import { describe, expect, it } from "vitest";
import { observation, PAYEE, stored, T0 } from "./testing/fixtures.ts";
import { addCounters, contribution, counterDelta, countersFrom, countersJson, usageReport, zeroCounters } from "./totals.ts";
import type { Bucket, Counters } from "./types.ts";

const counters = (over: Partial<Counters>): Counters => ({ ...zeroCounters(), ...over });

describe("contribution", () => {
  it.each<[string, Parameters<typeof observation>[0], Partial<Counters>]>([
    ["a success: its amount", {}, { payments: 1, success: 1, amount: 1000n }],
    [
      "a success with usage and an inference record",
      { usage: { inputTokens: 5, outputTokens: 7, cost: "0.5" }, inferenceRecordId: "0xr" },
      { payments: 1, success: 1, amount: 1000n, inferenceRecords: 1, usageReports: 1, inputTokens: 5, outputTokens: 7, cost: 5n * 10n ** 17n },
    ],
    ["a failure: counted, no amount, no usage", { success: false, reason: "insufficient_funds", usage: { inputTokens: 5 } }, { payments: 1, failed: 1 }],
    ["a pending payment", { success: false, reason: "settlement_pending" }, { payments: 1, pending: 1 }],
    ["an unexpected error", { success: false, reason: "unexpected_settle_error" }, { payments: 1, error: 1 }],
  ])("%s", (_, over, expected) => {
    expect(contribution(stored(observation(over)))).toEqual(counters(expected));
  });
});

describe("counterDelta", () => {
  it("moves a payment from pending to success without counting it twice", () => {
    const before = stored(observation({ success: false, reason: "settlement_pending" }));
    const after = stored(observation({ collected: true }));
    expect(counterDelta(before, after)).toEqual(counters({ pending: -1, success: 1, amount: 1000n }));
    expect(counterDelta(undefined, after)).toEqual(counters({ payments: 1, success: 1, amount: 1000n }));
  });
  it("refuses a change that would take a settled amount back", () => {
    expect(() => counterDelta(stored(observation()), stored(observation({ success: false, reason: "x" })))).toThrow(/would go down/);
  });
  it("round-trips through the stored form", () => {
    const c = counters({ payments: 2, amount: 10n ** 30n, cost: 7n });
    expect(countersFrom(countersJson(c))).toEqual(c);
    expect(addCounters(c, c)).toEqual(counters({ payments: 4, amount: 2n * 10n ** 30n, cost: 14n }));
  });
});

describe("usageReport", () => {
  const bucket = (day: string, payTo: string, over: Partial<Counters>, network = "eip155:84532", asset = "0xcc"): Bucket => ({ day, payTo, network, asset, counters: counters(over) });
  it("groups per payee and day, sums amounts per network and asset, and totals the range", () => {
    const report = usageReport(
      [
        bucket("2026-12-07", PAYEE, { payments: 2, success: 1, failed: 1, amount: 1000n, inferenceRecords: 1, usageReports: 1, inputTokens: 3, cost: 10n ** 18n }),
        bucket("2026-12-07", PAYEE, { payments: 1, success: 1, amount: 5n }, "eip155:4326", "0xdd"),
        bucket("2026-12-06", PAYEE, { payments: 1, success: 1, amount: 500n }),
        bucket("2026-12-06", "0xother", { payments: 1, pending: 1 }),
      ],
      ["2026-12-06", "2026-12-07"],
    );
    expect(report).toMatchObject({ from: "2026-12-06", to: "2026-12-07", days: 2 });
    expect(report.payees.map((p) => p.payTo)).toEqual([PAYEE, "0xother"]);
    const [payee, other] = report.payees;
    expect(payee!.days.map((d) => d.day)).toEqual(["2026-12-06", "2026-12-07"]);
    expect(payee!.days[1]).toEqual({
      day: "2026-12-07", payments: 3, success: 2, failed: 1, pending: 0, error: 0,
      amounts: [{ network: "eip155:84532", asset: "0xcc", amount: "1000" }, { network: "eip155:4326", asset: "0xdd", amount: "5" }],
      inferenceRecords: 1, usage: { reports: 1, inputTokens: 3, outputTokens: 0, cost: "1" },
    });
    expect(payee!.total).toMatchObject({ payments: 4, amounts: [{ network: "eip155:84532", asset: "0xcc", amount: "1500" }, { network: "eip155:4326", asset: "0xdd", amount: "5" }] });
    expect(other!.total).toMatchObject({ payments: 1, pending: 1, amounts: [] });
  });
  it("answers an empty range with no payees", () => {
    expect(usageReport([], ["2026-12-07"])).toEqual({ from: "2026-12-07", to: "2026-12-07", days: 1, payees: [] });
  });
  it("counts a day's record under the day it was first seen", () => {
    expect(stored(observation({ now: T0 })).time).toBe(T0);
  });
});
