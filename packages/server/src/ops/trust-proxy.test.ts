import express from "express";
import { describe, expect, it } from "vitest";
import { createApp } from "../app.ts";
import type { Facilitator } from "../facilitator.ts";
import { createLogger } from "../logger.ts";
import { MemoryRateLimitStore, rateLimit } from "./rate-limit.ts";
import { listen } from "../testing/http.ts";
import { clientKey, parseTrustProxy, type TrustProxy } from "./trust-proxy.ts";

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
    // The widest ranges accepted: /8 for IPv4 (also as a netmask), /16 for IPv6, /104 for IPv4-mapped IPv6.
    ["10.0.0.0/8", ["10.0.0.0/8"]],
    ["0.0.0.0/8", ["0.0.0.0/8"]],
    ["2001:db8::/16", ["2001:db8::/16"]],
    ["::ffff:10.0.0.0/104", ["::ffff:10.0.0.0/104"]],
    ["::ffff:10.0.0.1", ["::ffff:10.0.0.1"]],
    ["fe80::1%eth0", ["fe80::1%eth0"]],
  ] as [string | undefined, TrustProxy][])("%j is %j, and express compiles it", (raw, expected) => {
    expect(parseTrustProxy(raw)).toEqual({ ok: true, value: expected });
    // What config accepts, express's app.set takes at start without a throw.
    expect(() => express().set("trust proxy", expected)).not.toThrow();
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
    ["10.0.0.0/255.0.255.0", /"10.0.0.0\/255.0.255.0" is not an IP address/], // a netmask with holes
    // `true` under other names: ranges that together (or alone) hold any client's address.
    ["0.0.0.0/1,128.0.0.0/1,::/1,8000::/1", /^"0.0.0.0\/1", "128.0.0.0\/1", "::\/1", "8000::\/1" trust far more than a load balancer's network/],
    ["0.0.0.0/0", /^"0.0.0.0\/0" trusts far more than a load balancer's network/],
    ["::/0", /^"::\/0" trusts far more/],
    ["10.0.0.0/7", /^"10.0.0.0\/7" trusts far more/],
    ["10.0.0.0/254.0.0.0", /^"10.0.0.0\/254.0.0.0" trusts far more/], // /7 as a netmask
    ["0.0.0.0/0.0.0.0", /trusts far more/],
    ["2001::/15", /^"2001::\/15" trusts far more/],
    ["::ffff:0:0/96", /^"::ffff:0:0\/96" trusts far more/], // every IPv4 client, as IPv4-mapped addresses
    ["::ffff:10.0.0.0/103", /trusts far more/], // an IPv4 /7
    ["::/16", /^"::\/16" trusts far more/], // holds ::ffff:0:0/96
    ["::/80", /trusts far more/],
    ["10.0.0.0/8, loopback, 64.0.0.0/2", /^"64.0.0.0\/2" trusts far more .* \(the shortest prefixes accepted: \/8 for IPv4, \/16 for IPv6\)/],
    // node reads it as an address, express's parser does not: refused here rather than thrown at start.
    ["::1.2.3.4", /^express does not accept it \(invalid IP address: ::1.2.3.4\)$/],
  ])("refuses %j in one line", (raw, message) => {
    const parsed = parseTrustProxy(raw);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) {
      expect(parsed.problem).toMatch(message);
      expect(parsed.problem).not.toContain("\n");
    }
  });

  it("refuses the values express throws on at start (0.0.0.0/0 would otherwise be a stack trace)", () => {
    for (const value of [["0.0.0.0/0"], ["::1.2.3.4"], ["10.0.0.0/255.0.255.0"]]) {
      expect(() => express().set("trust proxy", value)).toThrow();
      expect(parseTrustProxy(value.join()).ok).toBe(false);
    }
  });

  it.each([
    [undefined, "unknown"],
    ["198.51.100.7", "198.51.100.7"],
    ["::ffff:198.51.100.7", "198.51.100.7"],
    ["::1", "0:0:0:0::/64"],
    ["2001:db8:1:2::1", "2001:db8:1:2::/64"],
    ["2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"],
    ["2001:0db8:0001:0002:0000:0000:0000:0009", "2001:db8:1:2::/64"],
    ["2001:db8:1:3::1", "2001:db8:1:3::/64"],
    ["fe80::1%eth0", "fe80:0:0:0::/64"],
    ["not an address", "not an address"],
  ])("counts %j as the client %j (IPv4 by address, IPv6 by /64)", (address, key) => {
    expect(clientKey(address)).toBe(key);
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
