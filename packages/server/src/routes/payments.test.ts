/** The operator routes over HTTP: the key, the answers' shape and headers, refusals with their reasons. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LmdbPaymentsStore } from "@facilitator/ledger";
import type { PaymentsStore } from "@facilitator/payments";
import { another, record, T0 } from "@facilitator/payments/testing";
import { listen, type Listening } from "../testing/http.ts";
import { paymentsRoutes } from "./payments.ts";

const KEY = "operator-key-0123456789abcdef";
const dir = mkdtempSync(join(tmpdir(), "payments-routes-"));
let store: LmdbPaymentsStore;
const servers: Listening[] = [];

async function serve(o: { store?: PaymentsStore; operatorKey?: string }) {
  const app = express();
  app.use(paymentsRoutes({ store: o.store ?? store, operatorKey: o.operatorKey, retentionDays: 30, now: () => T0 }));
  const s = await listen(app);
  servers.push(s);
  return s.url;
}
const get = (url: string, headers: Record<string, string> = { authorization: `Bearer ${KEY}` }) => fetch(url, { headers });

beforeAll(async () => {
  store = new LmdbPaymentsStore(dir, { retentionMs: 30 * 86_400_000, now: () => T0 });
  await record(store, another({ usage: { model: "<script>alert(1)</script>" } }));
  await record(store, another({ success: false, reason: "settlement_pending", now: T0 + 1 }));
});
afterAll(async () => {
  for (const s of servers) await s.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("payments routes", () => {
  it("serve the record to the operator key only, as escaped JSON nobody caches", async () => {
    const url = await serve({ operatorKey: KEY });
    const res = await get(`${url}/explorer/payments/api/payments`);
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    const text = await res.text();
    expect(text).not.toContain("<script>");
    const { payments } = JSON.parse(text);
    expect(payments.map((p: { outcome: string }) => p.outcome)).toEqual(["pending", "success"]);
    expect(payments[1]).not.toHaveProperty("version");
    // Its notice, by receiver (origin and path only) and state; never the secret.
    expect(payments[1].webhooks).toEqual([{ id: expect.any(String), receiver: "https://hooks.example/x402", state: "pending", attempts: 0, nextAt: T0 }]);
    expect(text).not.toContain("s".repeat(32));
  });

  it.each<[string, string, Record<string, string>, number, string]>([
    ["no key", "/usage", {}, 401, "unauthorized"],
    ["a wrong key", "/usage", { "x-api-key": "wrong-key-0123456789" }, 401, "unauthorized"],
    ["a bad query", "/usage?days=400", { authorization: `Bearer ${KEY}` }, 400, "invalid_query"],
    ["an unknown outcome", "/explorer/payments/api/payments?outcome=stolen", { authorization: `Bearer ${KEY}` }, 400, "invalid_query"],
  ])("refuse %s with its reason", async (_, path, headers, status, error) => {
    const url = await serve({ operatorKey: KEY });
    const res = await get(`${url}${path}`, headers);
    expect(res.status).toBe(status);
    expect(await res.json()).toMatchObject({ error });
  });

  it("answer 403 to everyone while no operator key is configured", async () => {
    const url = await serve({});
    const res = await get(`${url}/usage`);
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ error: "operator_key_not_configured" });
  });

  it("answer 503 when the record cannot be read, without its detail", async () => {
    const broken = { totals: () => Promise.reject(new Error("redis://:secret@host down")) } as unknown as PaymentsStore;
    const url = await serve({ store: broken, operatorKey: KEY });
    const res = await get(`${url}/usage`);
    expect(res.status).toBe(503);
    expect(await res.text()).not.toContain("secret");
  });

  it("serve the page to anyone, with a CSP that allows only its own script and calls", async () => {
    const url = await serve({ operatorKey: KEY });
    const res = await fetch(`${url}/explorer/payments`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-security-policy")).toMatch(/default-src 'none'; script-src 'sha256-[^']+'; .*connect-src 'self'/);
    expect(await res.text()).not.toMatch(/PAYMENTS_JS/);
  });
});
