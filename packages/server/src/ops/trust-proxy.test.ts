import { describe, expect, it } from "vitest";
import { createApp } from "../app.ts";
import type { Facilitator } from "../facilitator.ts";
import { createLogger } from "../logger.ts";
import { MemoryRateLimitStore, rateLimit } from "./rate-limit.ts";
import { listen } from "./test-http.ts";
import { parseTrustProxy, type TrustProxy } from "./trust-proxy.ts";

describe("TRUST_PROXY", () => {
  it.each([
    [undefined, false],
    ["", false],
    ["false", false],
    ["0", false],
    ["1", 1],
    [" 2 ", 2],
    ["10.0.0.1", ["10.0.0.1"]],
    ["10.0.0.0/8, 192.168.0.0/16", ["10.0.0.0/8", "192.168.0.0/16"]],
    ["10.0.0.0/255.0.0.0", ["10.0.0.0/255.0.0.0"]],
    ["2001:db8::/32,::1", ["2001:db8::/32", "::1"]],
    ["loopback, uniquelocal, linklocal", ["loopback", "uniquelocal", "linklocal"]],
  ] as [string | undefined, TrustProxy][])("%j is %j", (raw, expected) => {
    expect(parseTrustProxy(raw)).toEqual({ ok: true, value: expected });
  });

  it.each([
    ["true", /would believe any X-Forwarded-For/],
    ["TRUE", /would believe any X-Forwarded-For/],
    ["11", /more than any deployment has/],
    ["10.0.0.0/33", /"10.0.0.0\/33" is not an IP address/],
    ["::1/129", /"::1\/129" is not an IP address/],
    ["10.0.0.0/8/8", /is not an IP address/],
    ["lb.internal", /"lb.internal" is not an IP address, CIDR or one of loopback, linklocal, uniquelocal/],
    ["10.0.0.300", /is not an IP address/],
    ["-1", /is not an IP address/],
  ])("refuses %j", (raw, message) => {
    const parsed = parseTrustProxy(raw);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.problem).toMatch(message);
  });

  /** An app whose rate limit allows one request per client, behind the given trust setting. */
  async function limitedApp(trustProxy: TrustProxy | undefined) {
    const app = createApp({
      // Stands in for the facilitator: these tests are about who the limiter counts, not about payments.
      facilitator: { verify: async () => ({ status: 200, body: { isValid: false, invalidReason: "invalid_payload" } }) } as unknown as Facilitator,
      logger: createLogger("silent"),
      trustProxy,
      paymentGuards: [rateLimit({ perMinute: 1, store: new MemoryRateLimitStore() })],
    });
    return listen(app);
  }
  const verifyFrom = (url: string, forwardedFor?: string) =>
    fetch(`${url}/verify`, { method: "POST", headers: { "content-type": "application/json", ...(forwardedFor ? { "x-forwarded-for": forwardedFor } : {}) }, body: "{}" });

  it("by default counts the peer: X-Forwarded-For cannot buy a fresh rate-limit bucket", async () => {
    const srv = await limitedApp(undefined);
    try {
      expect((await verifyFrom(srv.url, "198.51.100.1")).status).toBe(200);
      expect((await verifyFrom(srv.url, "198.51.100.2")).status).toBe(429);
    } finally {
      await srv.close();
    }
  });

  it("behind a trusted balancer counts each client the balancer names", async () => {
    const srv = await limitedApp(["loopback"]);
    try {
      expect((await verifyFrom(srv.url, "198.51.100.1")).status).toBe(200);
      expect((await verifyFrom(srv.url, "198.51.100.2")).status).toBe(200);
      // The same client through the balancer again: its own bucket is spent.
      expect((await verifyFrom(srv.url, "198.51.100.1")).status).toBe(429);
      // A client cannot step around the balancer's entry by prepending its own: the right-most untrusted address counts.
      expect((await verifyFrom(srv.url, "203.0.113.9, 198.51.100.2")).status).toBe(429);
    } finally {
      await srv.close();
    }
  });

  it("with a hop count trusts exactly that many proxies", async () => {
    const srv = await limitedApp(1);
    try {
      expect((await verifyFrom(srv.url, "198.51.100.7")).status).toBe(200);
      // One hop: only the last address (added by the one balancer) counts, whatever the client wrote before it.
      expect((await verifyFrom(srv.url, "203.0.113.1, 198.51.100.7")).status).toBe(429);
    } finally {
      await srv.close();
    }
  });
});
