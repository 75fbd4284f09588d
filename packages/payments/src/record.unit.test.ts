import { describe, expect, it } from "vitest";
import { canonicalJson, dayOf, lastDays, mergeRecord, observedRecord, outcomeOf, paymentId, type SettleObservation } from "./record.ts";
import type { PaymentRecord } from "./types.ts";
import { observation, stored, T0 } from "./testing/fixtures.ts";

const payload = observation().payload as Record<string, unknown>;

describe("paymentId", () => {
  it("is the same however the payload's keys and the addresses are spelled", () => {
    const reordered = { authorization: { value: "1000", nonce: "0x01", from: "0xA" }, signature: "0xsig" };
    expect(paymentId(observation({ payload: reordered, payTo: "0x00000000000000000000000000000000000000bb" }))).toBe(paymentId(observation()));
  });
  it.each<[string, Partial<SettleObservation>]>([
    ["another payload", { payload: { ...payload, signature: "0xother" } }],
    ["another payee (a request naming someone else for this payload)", { payTo: "0x00000000000000000000000000000000000000dd" }],
    ["another network", { network: "eip155:8453" }],
    ["another asset", { asset: "0x00000000000000000000000000000000000000ee" }],
  ])("differs for %s", (_, over) => {
    expect(paymentId(observation(over))).not.toBe(paymentId(observation()));
  });
});

describe("outcomeOf", () => {
  it.each<[boolean, string | undefined, string | undefined]>([
    [true, undefined, "success"],
    [false, "insufficient_funds", "failed"],
    [false, "settlement_pending", "pending"],
    [false, "unexpected_settle_error", "error"],
    [false, "duplicate_settlement", undefined],
  ])("success %s, reason %s -> %s", (success, reason, expected) => {
    expect(outcomeOf(success, reason)).toBe(expected);
  });
});

describe("observedRecord", () => {
  it("keeps the settled amount of a success and the asked amount otherwise, addresses in lower case", () => {
    expect(observedRecord(observation({ amount: "400" }))).toMatchObject({ outcome: "success", amount: "400", payTo: "0x00000000000000000000000000000000000000bb", payer: "0x00000000000000000000000000000000000000aa" });
    expect(observedRecord(observation({ success: false, reason: "insufficient_funds", amount: undefined, transaction: "" }))).toMatchObject({ outcome: "failed", amount: "1000", reason: "insufficient_funds" });
    expect(observedRecord(observation({ success: false, reason: "insufficient_funds", transaction: "" }))).not.toHaveProperty("transaction");
  });
  it("makes nothing of a duplicate", () => {
    expect(observedRecord(observation({ success: false, reason: "duplicate_settlement" }))).toBeUndefined();
  });
});

describe("mergeRecord", () => {
  const pending = observation({ success: false, reason: "settlement_pending", amount: undefined });
  const later = (over: Partial<SettleObservation>) => observedRecord(observation({ now: T0 + 90_000, ...over }))!;

  it.each<[string, PaymentRecord | undefined, PaymentRecord, Partial<PaymentRecord> | undefined]>([
    ["a first answer is stored as it is", undefined, later({}), { outcome: "success", answers: 1 }],
    ["the same success again changes nothing", stored(observation()), later({}), undefined],
    ["a success stays a success whatever comes later", stored(observation()), later({ success: false, reason: "insufficient_funds" }), undefined],
    [
      "pending, then collected: success at the first time, latency from it",
      stored(pending),
      later({ collected: true, latencyMs: 5 }),
      { outcome: "success", time: T0, latencyMs: 90_000, collected: true, answers: 2, version: 1 },
    ],
    ["pending, then the client's retry settles it", stored(pending), later({ latencyMs: 30 }), { outcome: "success", latencyMs: 30, time: T0 }],
    [
      "a collected success later answered to the client's retry gains the usage it carried",
      stored(observation({ collected: true })),
      later({ usage: { inputTokens: 10 }, inferenceRecordId: "0xrec" }),
      { outcome: "success", collected: true, usage: { inputTokens: 10 }, inferenceRecordId: "0xrec" },
    ],
    ["a failure retried into success", stored(observation({ success: false, reason: "insufficient_funds", transaction: "" })), later({}), { outcome: "success", transaction: "0xtx" }],
    ["a failure with the same reason again changes nothing", stored(observation({ success: false, reason: "x" })), later({ success: false, reason: "x" }), undefined],
  ])("%s", (_, current, next, expected) => {
    const merged = mergeRecord(current, next);
    if (expected === undefined) expect(merged).toBeUndefined();
    else {
      expect(merged).toMatchObject(expected);
      if (merged!.outcome === "success") expect(merged).not.toHaveProperty("reason");
    }
  });
});

describe("days", () => {
  it("names UTC days and counts back from today", () => {
    expect(dayOf(Date.UTC(2026, 0, 1, 23, 59))).toBe("2026-01-01");
    expect(lastDays(Date.UTC(2026, 2, 1, 5), 3)).toEqual(["2026-02-27", "2026-02-28", "2026-03-01"]);
  });
  it("canonicalJson sorts keys at every level and drops undefined", () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: undefined }], c: null } })).toBe('{"a":{"c":null,"d":[2,{"z":1}]},"b":1}');
  });
});
