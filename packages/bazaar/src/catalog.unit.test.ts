import { describe, expect, it } from "vitest";
import { Catalog, encodeExtensionResponses, MAX_ACCEPTS, mergeAccepts, type CatalogLimits } from "./catalog.ts";
import { readDeclaration, type Draft } from "./declaration.ts";
import { parseListQuery, parseSearchQuery } from "./query.ts";
import { declaringPayload, officialExtension, PAY_TO, PAYER, weatherExtension } from "./testing/declarations.ts";
import { MemoryBazaarStore } from "./testing/memory-store.ts";
import type { BazaarStore } from "./types.ts";

const T0 = 1_800_000_000_000;
const LIMITS: CatalogLimits = { ttlMs: 60_000, maxRoutesPerPayTo: 3, maxRoutesPerPayer: 5, maxResources: 10 };

function setup(limits: Partial<CatalogLimits> = {}, store: BazaarStore = new MemoryBazaarStore()) {
  let t = T0;
  const catalog = new Catalog(store, { ...LIMITS, ...limits, now: () => t });
  return { catalog, store, elapse: (ms: number) => void (t += ms) };
}
const draft = (payload: unknown, payer = PAYER): Draft => {
  const d = readDeclaration(payload, payer);
  if (d.kind !== "valid") throw new Error(JSON.stringify(d));
  return d.draft;
};
/** A payment for `/<path>` declaring a GET route, to `payTo`. */
const route = (path: string, resource: Record<string, unknown> = {}, accepted: Record<string, unknown> = {}) =>
  draft(declaringPayload(officialExtension({ output: { example: { ok: true } } }, "GET", `/${path}`, `/${path}`), { url: `https://api.example.com/${path}`, ...resource }, accepted));
const list = (c: Catalog, raw: Record<string, unknown> = {}) => {
  const q = parseListQuery(raw);
  if (!q.ok) throw new Error(q.message);
  return c.list(q.query);
};
const search = (c: Catalog, raw: Record<string, unknown>) => {
  const q = parseSearchQuery(raw);
  if (!q.ok) throw new Error(q.message);
  return c.search(q.query);
};

describe("Catalog.record", () => {
  it("catalogues a settled declaration and serves it in the official shape", async () => {
    const { catalog } = setup();
    expect(await catalog.record(draft(declaringPayload(weatherExtension())), PAYER)).toEqual({ status: "success" });
    const page = await list(catalog);
    expect(page).toEqual({ x402Version: 2, items: [expect.any(Object)], pagination: { limit: 100, offset: 0, total: 1 } });
    expect(page.items[0]).toMatchObject({
      resource: "https://api.example.com/weather/:city",
      type: "http",
      x402Version: 2,
      lastUpdated: new Date(T0).toISOString(),
      description: "Weather by city",
      accepts: [{ scheme: "exact", network: "eip155:84532", payTo: PAY_TO, amount: "1000" }],
      extensions: { bazaar: { routeTemplate: "/weather/:city", info: { input: { method: "GET" } } } },
    });
  });

  it("keeps one entry per route as payments come in: latest way to pay first, fresher, at most MAX_ACCEPTS ways", async () => {
    const { catalog, elapse } = setup();
    await catalog.record(draft(declaringPayload(weatherExtension("/weather/paris"))), PAYER);
    elapse(1_000);
    await catalog.record(draft(declaringPayload(weatherExtension("/weather/rome"), { url: "https://api.example.com/weather/rome" }, { network: "eip155:10740" })), PAYER);
    const { items } = await list(catalog);
    expect(items).toHaveLength(1);
    expect(items[0]!.accepts.map((a) => a.network)).toEqual(["eip155:10740", "eip155:84532"]);
    expect(items[0]!.lastUpdated).toBe(new Date(T0 + 1_000).toISOString());
    // fresh for the whole TTL after the latest payment
    elapse(LIMITS.ttlMs - 1);
    expect((await list(catalog)).items).toHaveLength(1);
    const many = Array.from({ length: 6 }, (_, i) => ({ scheme: "exact", network: `eip155:${i}`, amount: "1", asset: "0x01", payTo: PAY_TO, maxTimeoutSeconds: 1 }));
    expect(many.reduce((acc, a) => mergeAccepts(acc, a), [] as typeof many)).toHaveLength(MAX_ACCEPTS);
  });

  it("drops a resource nobody paid for within the TTL, from lists and searches alike", async () => {
    const { catalog, elapse } = setup();
    await catalog.record(route("old", { description: "stale data" }), PAYER);
    elapse(10_000);
    await catalog.record(route("new", { description: "fresh data" }), PAYER);
    expect((await list(catalog)).pagination.total).toBe(2);
    elapse(LIMITS.ttlMs - 10_000);
    expect((await list(catalog)).items.map((i) => i.resource)).toEqual(["https://api.example.com/new"]);
    expect((await search(catalog, { query: "data" })).resources.map((i) => i.resource)).toEqual(["https://api.example.com/new"]);
  });

  it("refuses past each quota with its reason, and still refreshes what is catalogued", async () => {
    const { catalog } = setup();
    for (const p of ["a", "b", "c"]) expect(await catalog.record(route(p), PAYER)).toEqual({ status: "success" });
    const refused = await catalog.record(route("d"), PAYER);
    expect(refused).toMatchObject({ status: "rejected", rejectedReason: expect.stringMatching(/^payto_route_limit: this payee already has 3 resources/) });
    expect(await catalog.record(route("a"), "0x3333333333333333333333333333333333333333")).toEqual({ status: "success" });
    // one payer bringing in routes of many payees
    const other = (i: number) => ({ payTo: `0x${String(i).repeat(40).slice(0, 40)}` });
    const results = [];
    for (let i = 4; i <= 7; i++) results.push(await catalog.record(route(`p${i}`, {}, other(i)), PAYER));
    expect(results.map((r) => r.status)).toEqual(["success", "success", "rejected", "rejected"]);
    expect(results[2]).toMatchObject({ rejectedReason: expect.stringMatching(/^payer_route_limit: /) });
    expect((await list(catalog)).pagination.total).toBe(5);
  });

  it("keeps thousands of fake routes from one payer to one payee down to the quota, refusing the rest with a reason", async () => {
    const { catalog } = setup({ maxRoutesPerPayTo: 100, maxRoutesPerPayer: 100, maxResources: 10_000 });
    const outcomes = new Map<string, number>();
    for (let i = 0; i < 2_000; i++) {
      const r = await catalog.record(route(`fake/${i}`, { description: `fake ${i}` }), PAYER);
      const key = r.status === "rejected" ? r.rejectedReason.split(":")[0]! : r.status;
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    }
    expect(Object.fromEntries(outcomes)).toEqual({ success: 100, payto_route_limit: 1_900 });
    expect((await list(catalog)).pagination.total).toBe(100);
  });

  it("refuses past the catalogue's total with catalog_full", async () => {
    const { catalog } = setup({ maxResources: 2, maxRoutesPerPayer: 100 });
    await catalog.record(route("a"), PAYER);
    await catalog.record(route("b"), PAYER);
    expect(await catalog.record(route("c"), PAYER)).toMatchObject({ status: "rejected", rejectedReason: expect.stringMatching(/^catalog_full: the catalogue holds its maximum of 2/) });
  });

  it("encodes the EXTENSION-RESPONSES header as base64 JSON keyed by extension", () => {
    const header = encodeExtensionResponses({ bazaar: { status: "success" } });
    expect(header).toBe("eyJiYXphYXIiOnsic3RhdHVzIjoic3VjY2VzcyJ9fQ==");
  });
});

describe("Catalog.list and Catalog.search", () => {
  async function stocked() {
    const s = setup({ maxRoutesPerPayTo: 100, maxRoutesPerPayer: 100, maxResources: 100 });
    const solana = { network: "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1", payTo: "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin", asset: "4zMMC9srt5Ri5X14GAgXhaHii3GopNu" };
    await s.catalog.record(route("weather", { description: "Weather forecast", serviceName: "Skyline", tags: ["weather"] }), PAYER);
    await s.catalog.record(route("rain", { description: "Rain radar, weather maps" }, solana), PAYER);
    await s.catalog.record(route("stocks", { description: "Stock quotes" }, { scheme: "upto" }), PAYER);
    const tool = officialExtension({ toolName: "geocode", description: "Address to coordinates", inputSchema: { type: "object" } }, "POST", "/mcp", "/mcp");
    await s.catalog.record(draft(declaringPayload(tool, { url: "https://api.example.com/mcp", description: "" })), PAYER);
    return s;
  }
  const names = (items: { resource: string }[]) => items.map((i) => i.resource.replace("https://api.example.com/", ""));

  it.each([
    [{}, ["mcp", "rain", "stocks", "weather"]],
    [{ type: "mcp" }, ["mcp"]],
    [{ type: "http", scheme: "exact" }, ["rain", "weather"]],
    [{ network: "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1" }, ["rain"]],
    [{ payTo: PAY_TO.toUpperCase().replace("0X", "0x") }, ["mcp", "stocks", "weather"]],
    [{ payTo: PAY_TO, network: "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1" }, []],
    [{ extensions: "bazaar" }, ["mcp", "rain", "stocks", "weather"]],
    [{ extensions: "bazaar,payment-identifier" }, []],
  ])("filters %j", async (filters, expected) => {
    const { catalog } = await stocked();
    expect(names((await list(catalog, filters)).items)).toEqual(expected);
  });

  it("pages with limit and offset in a stable order, total counting every match", async () => {
    const { catalog } = await stocked();
    const first = await list(catalog, { limit: "2" });
    const second = await list(catalog, { limit: "2", offset: "2" });
    expect(names(first.items)).toEqual(["mcp", "rain"]);
    expect(names(second.items)).toEqual(["stocks", "weather"]);
    expect(second.pagination).toEqual({ limit: 2, offset: 2, total: 4 });
    expect((await list(catalog, { offset: "10" })).items).toEqual([]);
  });

  it("ranks search results, says when more remain and hands out a cursor to them", async () => {
    const { catalog } = await stocked();
    const all = await search(catalog, { query: "weather" });
    expect(names(all.resources)).toEqual(["weather", "rain"]); // a tag outranks a description
    expect(all).toMatchObject({ x402Version: 2, partialResults: false, pagination: { limit: 20, cursor: null } });
    const first = await search(catalog, { query: "weather", limit: "1" });
    expect(first).toMatchObject({ partialResults: true, pagination: { limit: 1, cursor: expect.any(String) } });
    const next = await search(catalog, { query: "weather", limit: "1", cursor: first.pagination.cursor });
    expect(names(next.resources)).toEqual(["rain"]);
    expect(next.pagination.cursor).toBeNull();
    expect(names((await search(catalog, { query: "coordinates" })).resources)).toEqual(["mcp"]);
    expect((await search(catalog, { query: "bitcoin", type: "http" })).resources).toEqual([]);
    expect(names((await search(catalog, { query: "weather", network: "eip155:84532" })).resources)).toEqual(["weather"]);
  });

  it("reads the store once for queries within the snapshot, and again after its own write", async () => {
    const store = new MemoryBazaarStore();
    let reads = 0;
    const counting: BazaarStore = { ...store, get: store.get.bind(store), put: store.put.bind(store), close: store.close.bind(store), list: (now) => (reads++, store.list(now)) };
    const { catalog } = setup({}, counting);
    await catalog.record(route("a"), PAYER);
    await Promise.all([list(catalog), list(catalog), search(catalog, { query: "api" })]);
    expect(reads).toBe(1);
    await catalog.record(route("b"), PAYER);
    expect((await list(catalog)).pagination.total).toBe(2);
    expect(reads).toBe(2);
  });
});
