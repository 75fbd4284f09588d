import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiKeyGuard, apiKeyId } from "./auth.ts";
import { listen, postJson, type Listening } from "../testing/http.ts";

/** An app whose routes count how often they ran, so a refused request is seen to reach nothing. */
function guardedApp(keys: string[]) {
  const reached: string[] = [];
  const app = express();
  app.use(express.json());
  const guard = apiKeyGuard(keys);
  app.post("/verify", guard, (_req, res) => {
    reached.push("verify");
    res.json({ isValid: true, keyId: res.locals.apiKeyId });
  });
  app.post("/settle", guard, (_req, res) => {
    reached.push("settle");
    res.json({ success: true, transaction: "0x1", network: "base-sepolia" });
  });
  app.post("/inference", guard, (_req, res) => {
    reached.push("inference");
    res.status(202).json({ ok: true });
  });
  return { app, reached };
}

describe("apiKeyGuard with keys", () => {
  const keys = ["k1-0123456789abcdef", "second-key-with-another-length"];
  let srv: Listening;
  let reached: string[];
  beforeAll(async () => {
    const built = guardedApp(keys);
    reached = built.reached;
    srv = await listen(built.app);
  });
  afterAll(() => srv?.close());

  it.each([
    ["Bearer with the first key", { authorization: `Bearer ${keys[0]}` }],
    ["Bearer with the second key", { authorization: `Bearer ${keys[1]}` }],
    ["a lower-case bearer scheme", { authorization: `bearer ${keys[0]}` }],
    ["x-api-key", { "x-api-key": keys[1]! }],
  ])("accepts %s", async (_label, headers) => {
    const res = await postJson(`${srv.url}/verify`, {}, headers);
    expect(res.status).toBe(200);
    expect((await res.json()).isValid).toBe(true);
  });

  it.each([
    ["no key", {}],
    ["a wrong key", { authorization: "Bearer not-a-key" }],
    ["a prefix of a key", { authorization: `Bearer ${keys[0]!.slice(0, -1)}` }],
    ["a key with a suffix", { "x-api-key": `${keys[0]}x` }],
    ["a key under the Basic scheme", { authorization: `Basic ${keys[0]}` }],
    ["an empty x-api-key", { "x-api-key": "" }],
  ])("refuses %s with 401 in the /verify shape, reaching no route", async (_label, headers) => {
    const before = reached.length;
    const res = await postJson(`${srv.url}/verify`, { x402Version: 2 }, headers);
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
    const body = await res.json();
    expect(body).toEqual({ isValid: false, invalidReason: "unauthorized", invalidMessage: expect.any(String) });
    expect(reached.length).toBe(before);
  });

  it("answers /settle refusals in the settle shape the official clients parse", async () => {
    const res = await postJson(`${srv.url}/settle`, {});
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ success: false, errorReason: "unauthorized", errorMessage: expect.any(String), transaction: "", network: "" });
    expect(reached).not.toContain("settle");
  });

  it("answers other endpoints with a plain error", async () => {
    const res = await postJson(`${srv.url}/inference`, {}, { "x-api-key": "nope" });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: "unauthorized", message: "the API key is not valid for this facilitator" });
  });

  it("passes on an id of the key, never the key itself", async () => {
    const body = await (await postJson(`${srv.url}/verify`, {}, { "x-api-key": keys[0]! })).json();
    expect(body.keyId).toBe(apiKeyId(keys[0]!));
    expect(body.keyId).not.toContain(keys[0]!.slice(0, 6));
  });
});

describe("apiKeyGuard without keys", () => {
  it("passes every request (the embedded default needs no key)", async () => {
    const { app } = guardedApp([]);
    const srv = await listen(app);
    try {
      const res = await postJson(`${srv.url}/verify`, {});
      expect(res.status).toBe(200);
      const withHeader = await postJson(`${srv.url}/settle`, {}, { authorization: "Bearer whatever" });
      expect(withHeader.status).toBe(200);
    } finally {
      await srv.close();
    }
  });
});
