import { describe, expect, it } from "vitest";
import { LIST_LIMITS, makeCursor, parseListQuery, parseSearchQuery, score, SEARCH_LIMITS, searchText, words } from "./query.ts";
import { storedResource } from "./testing/store-contract-suite.ts";

describe("parseListQuery", () => {
  const ok: [string, Record<string, unknown>, object][] = [
    ["defaults", {}, { filters: {}, limit: LIST_LIMITS.defaultLimit, offset: 0 }],
    ["limit and offset", { limit: "5", offset: "10" }, { limit: 5, offset: 10 }],
    ["a limit above the most is clamped", { limit: "100000" }, { limit: LIST_LIMITS.maxLimit }],
    ["empty values are absent", { limit: "", type: "" }, { filters: {}, limit: LIST_LIMITS.defaultLimit }],
    ["filters, an EVM payTo in lower case", { type: "http", payTo: "0xABCDEF0000000000000000000000000000000001", scheme: "exact", network: "eip155:8453" }, { filters: { type: "http", payTo: "0xabcdef0000000000000000000000000000000001", scheme: "exact", network: "eip155:8453" } }],
    ["a Solana payTo as it is", { payTo: "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin" }, { filters: { payTo: "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin" } }],
    ["extensions, comma separated", { extensions: "bazaar, other" }, { filters: { extensions: ["bazaar", "other"] } }],
    ["a parameter given once as a list", { type: ["mcp"] }, { filters: { type: "mcp" } }],
  ];
  it.each(ok)("%s", (_name, raw, expected) => {
    const parsed = parseListQuery(raw);
    expect(parsed.ok).toBe(true);
    expect(parsed.ok && parsed.query).toMatchObject(expected);
  });

  const bad: [string, Record<string, unknown>, string][] = [
    ["limit 0", { limit: "0" }, "limit must be a whole number of at least 1"],
    ["limit -1", { limit: "-1" }, "limit"],
    ["limit 1.5", { limit: "1.5" }, "limit"],
    ["limit in hex", { limit: "0x10" }, "limit"],
    ["offset of 20 digits", { offset: "99999999999999999999" }, "offset"],
    ["a repeated filter", { network: ["a", "b"] }, "network must be given once"],
    ["a filter of 1,000 characters", { payTo: "x".repeat(1_000) }, "payTo is longer than"],
    ["a nested object (qs style)", { type: { $ne: "x" } }, "type must be given once"],
  ];
  it.each(bad)("refuses %s", (_name, raw, message) => {
    expect(parseListQuery(raw)).toMatchObject({ ok: false, message: expect.stringContaining(message) });
  });
});

describe("parseSearchQuery", () => {
  it("reads the words, the filters, the limit and a cursor it gave out", () => {
    const parsed = parseSearchQuery({ query: "Weather forecast, weather API!", network: "eip155:84532", limit: "5", cursor: makeCursor(10) });
    expect(parsed).toEqual({ ok: true, query: { words: ["weather", "forecast", "api"], filters: { network: "eip155:84532" }, limit: 5, offset: 10 } });
    expect(parseSearchQuery({ query: "x y", limit: "1000" })).toMatchObject({ ok: true, query: { limit: SEARCH_LIMITS.maxLimit, words: [], offset: 0 } });
  });

  it.each([
    ["no query", {}, "query is required"],
    ["a blank query", { query: "   " }, "query is required"],
    ["a query of 10,000 characters", { query: "w ".repeat(5_000) }, "longer than"],
    ["a cursor it did not give out", { query: "x", cursor: "bm9wZQ" }, "cursor"],
    ["a cursor of 1 KB", { query: "x", cursor: "a".repeat(1_000) }, "cursor"],
  ])("refuses %s", (_name, raw, message) => {
    expect(parseSearchQuery(raw as Record<string, unknown>)).toMatchObject({ ok: false, message: expect.stringContaining(message) });
  });

  it("keeps at most 16 distinct words of two letters or more, in any script", () => {
    expect(words("a bb cc bb Ünïcode 天气 x")).toEqual(["bb", "cc", "ünïcode", "天气"]);
    expect(words(Array.from({ length: 40 }, (_, i) => `w${i}`).join(" "))).toHaveLength(SEARCH_LIMITS.words);
  });
});

describe("score", () => {
  const base = storedResource().item;
  const text = searchText({ ...base, resource: "https://api.example.com/forecast", serviceName: "Skyline", tags: ["weather"], description: "Hourly rain radar" });
  it.each([
    [["weather"], 3],
    [["skyline"], 3],
    [["rain"], 2],
    [["forecast"], 1],
    [["weather", "rain", "forecast"], 6],
    [["stocks"], 0],
  ])("%j scores %i", (query, expected) => {
    expect(score(text, query)).toBe(expected);
  });

  it("searches an MCP tool's name and description", () => {
    const tool = searchText({ ...base, type: "mcp", extensions: { bazaar: { info: { input: { type: "mcp", toolName: "geocode", description: "address to coordinates" } }, schema: {} } } });
    expect(score(tool, ["geocode"])).toBe(2);
    expect(score(tool, ["coordinates"])).toBe(2);
  });
});
