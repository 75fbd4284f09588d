import { describe, expect, it } from "vitest";
import { parseRecentQuery, parseUsageQuery } from "./query.ts";

describe("parseUsageQuery", () => {
  it.each<[string, Record<string, unknown>, unknown]>([
    ["nothing: the last 7 days, every payee", {}, { days: 7 }],
    ["days and a payee in any case", { days: "30", payTo: "0x00000000000000000000000000000000000000BB" }, { days: 30, payTo: "0x00000000000000000000000000000000000000bb" }],
    ["a Solana payee as it is", { payTo: "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin" }, { days: 7, payTo: "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin" }],
  ])("reads %s", (_, raw, expected) => {
    expect(parseUsageQuery(raw, 30)).toEqual({ ok: true, query: expected });
  });
  it.each<[string, Record<string, unknown>, string]>([
    ["days past the retention", { days: "31" }, "days must be a whole number from 1 to 30"],
    ["days not a number", { days: "a week" }, "days must be a whole number from 1 to 30"],
    ["zero days", { days: "0" }, "days must be a whole number from 1 to 30"],
    ["a repeated parameter", { days: ["1", "2"] }, "days must be given once"],
    ["markup as a payee", { payTo: "<script>" }, "payTo must be an address (letters and digits, at most 128)"],
  ])("refuses %s", (_, raw, message) => {
    expect(parseUsageQuery(raw, 30)).toEqual({ ok: false, message });
  });
  it("never offers more days than are kept", () => {
    expect(parseUsageQuery({}, 3)).toEqual({ ok: true, query: { days: 3 } });
  });
});

describe("parseRecentQuery", () => {
  it.each<[string, Record<string, unknown>, unknown]>([
    ["nothing", {}, { limit: 50 }],
    ["every filter", { network: "eip155:84532", outcome: "pending", limit: "10", before: "1800000000000" }, { network: "eip155:84532", outcome: "pending", limit: 10, before: 1_800_000_000_000 }],
    ["a Solana network", { network: "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1" }, { network: "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1", limit: 50 }],
  ])("reads %s", (_, raw, expected) => {
    expect(parseRecentQuery(raw)).toEqual({ ok: true, query: expected });
  });
  it.each<[string, Record<string, unknown>, RegExp]>([
    ["a v1 network name", { network: "base-sepolia" }, /CAIP-2/],
    ["an unknown outcome", { outcome: "stolen" }, /outcome must be one of success, failed, pending, error/],
    ["a limit too large", { limit: "201" }, /limit must be a whole number from 1 to 200/],
    ["a negative before", { before: "-1" }, /before must be a whole number/],
  ])("refuses %s", (_, raw, message) => {
    const parsed = parseRecentQuery(raw);
    expect(parsed.ok).toBe(false);
    expect((parsed as { message: string }).message).toMatch(message);
  });
});
