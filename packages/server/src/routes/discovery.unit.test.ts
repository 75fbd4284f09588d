import { describe, expect, it } from "vitest";
import { Catalog, type BazaarStore } from "@facilitator/bazaar";
import { MemoryBazaarStore } from "@facilitator/bazaar/testing";
import { declaringPayload, PAYER, weatherExtension } from "@facilitator/bazaar/testing/declarations";
import { bazaarExtensionResponses, escapedJson } from "./discovery.ts";

const limits = { ttlMs: 60_000, maxRoutesPerPayTo: 10, maxRoutesPerPayer: 10, maxResources: 10 };
const quiet = { info: () => undefined, warn: () => undefined };
const decode = (header: string | undefined) => (header === undefined ? undefined : JSON.parse(Buffer.from(header, "base64").toString()));
const body = (payload: unknown) => ({ x402Version: 2, paymentPayload: payload, paymentRequirements: {} });

describe("bazaarExtensionResponses", () => {
  const respond = (store: BazaarStore = new MemoryBazaarStore(), waitMs?: number) => bazaarExtensionResponses(new Catalog(store, limits), quiet, waitMs);

  it("says nothing for a payment without a declaration, or for a good one before it settles", async () => {
    expect(await respond()("settle", body({ x402Version: 2, accepted: {}, payload: {} }), { ok: true, payer: PAYER })).toBeUndefined();
    expect(await respond()("verify", body(declaringPayload(weatherExtension())), { ok: true, payer: PAYER })).toBeUndefined();
    expect(await respond()("settle", body(declaringPayload(weatherExtension())), { ok: false, payer: PAYER })).toBeUndefined();
  });

  it("rejects a bad declaration on verify and settle alike, reason first", async () => {
    const bad = body(declaringPayload(weatherExtension(), { description: "x".repeat(5_000) }));
    for (const action of ["verify", "settle"] as const) {
      expect(decode(await respond()(action, bad, { ok: true, payer: PAYER }))).toEqual({ bazaar: { status: "rejected", rejectedReason: expect.stringMatching(/^description_too_long: /) } });
    }
  });

  it("answers success once catalogued, processing when the store is slow, catalog_unavailable when it fails", async () => {
    const good = body(declaringPayload(weatherExtension()));
    expect(decode(await respond()("settle", good, { ok: true, payer: PAYER }))).toEqual({ bazaar: { status: "success" } });
    const store = new MemoryBazaarStore();
    const slow: BazaarStore = { ...store, get: store.get.bind(store), list: store.list.bind(store), close: store.close.bind(store), put: () => new Promise(() => undefined) };
    expect(decode(await respond(slow, 20)("settle", good, { ok: true, payer: PAYER }))).toEqual({ bazaar: { status: "processing" } });
    const broken: BazaarStore = { ...slow, put: () => Promise.reject(new Error("redis down")) };
    expect(decode(await respond(broken)("settle", good, { ok: true, payer: PAYER }))).toEqual({ bazaar: { status: "rejected", rejectedReason: expect.stringMatching(/^catalog_unavailable: /) } });
  });
});

describe("escapedJson", () => {
  it("writes markup characters as escapes and parses back to the same data", () => {
    const data = { d: '<script>alert("x")</script> & \u2028' };
    const text = escapedJson(data);
    expect(text).not.toMatch(/[<>&\u2028]/);
    expect(JSON.parse(text)).toEqual(data);
  });
});
