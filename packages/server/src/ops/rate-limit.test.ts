import express, { type RequestHandler } from "express";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRedis, startRedisCluster, type RedisCluster, type RedisServer } from "@facilitator/devnet";
import { apiKeyGuard } from "./auth.ts";
import { defaultRateLimitKey, MemoryRateLimitStore, rateLimit, RedisRateLimitStore, type RateLimitOptions } from "./rate-limit.ts";
import { listen, postJson, type Listening } from "../testing/http.ts";

const servers: Listening[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

/** /verify, /settle and /other behind `guards`; `reached` counts requests that got past them. */
async function limitedApp(guards: RequestHandler[]) {
  const counter = { reached: 0 };
  const app = express();
  app.use(express.json());
  for (const path of ["/verify", "/settle", "/other"]) {
    app.post(path, ...guards, (_req, res) => {
      counter.reached += 1;
      res.json({ ok: true });
    });
  }
  const srv = await listen(app);
  servers.push(srv);
  return { url: srv.url, counter };
}

const statuses = async (n: number, send: (i: number) => Promise<Response>) => {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const res = await send(i);
    await res.arrayBuffer();
    out.push(res.status);
  }
  return out;
};

describe("rateLimit with the in-memory store", () => {
  const limited = (opts: Partial<RateLimitOptions> = {}) => rateLimit({ perMinute: 3, store: new MemoryRateLimitStore(), ...opts });

  it("lets perMinute requests through, then answers 429 with Retry-After in the endpoint's shape", async () => {
    const { url, counter } = await limitedApp([limited()]);
    expect(await statuses(3, () => postJson(`${url}/verify`, {}))).toEqual([200, 200, 200]);
    const refused = await postJson(`${url}/verify`, {});
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(await refused.json()).toEqual({ isValid: false, invalidReason: "rate_limited", invalidMessage: expect.stringContaining("3 requests") });

    const settle = await postJson(`${url}/settle`, {});
    expect(settle.status).toBe(429);
    expect(await settle.json()).toEqual({ success: false, errorReason: "rate_limited", errorMessage: expect.any(String), transaction: "", network: "" });
    const other = await postJson(`${url}/other`, {});
    expect(await other.json()).toEqual({ error: "rate_limited", message: expect.any(String) });
    expect(counter.reached).toBe(3);
  });

  it("perMinute 0 switches it off", async () => {
    const { url } = await limitedApp([limited({ perMinute: 0 })]);
    expect(new Set(await statuses(20, () => postJson(`${url}/verify`, {})))).toEqual(new Set([200]));
  });

  it("gives every verified API key its own bucket; made-up keys are refused before they can mint buckets", async () => {
    const { url } = await limitedApp([apiKeyGuard(["key-a", "key-b"]), limited({ perMinute: 2 })]);
    const as = (key: string) => () => postJson(`${url}/verify`, {}, { authorization: `Bearer ${key}` });
    expect(await statuses(3, as("key-a"))).toEqual([200, 200, 429]);
    expect(await statuses(3, as("key-b"))).toEqual([200, 200, 429]);
    expect(await statuses(2, as("made-up"))).toEqual([401, 401]);
  });

  it("keys by client IP without API keys, or by keyOf when given", async () => {
    const byIp = await limitedApp([limited({ perMinute: 2 })]);
    expect(await statuses(3, () => postJson(`${byIp.url}/verify`, {}))).toEqual([200, 200, 429]);
    const byHeader = await limitedApp([limited({ perMinute: 1, keyOf: (req) => String(req.get("x-tenant")) })]);
    const as = (tenant: string) => () => postJson(`${byHeader.url}/verify`, {}, { "x-tenant": tenant });
    expect(await statuses(2, as("t1"))).toEqual([200, 429]);
    expect(await statuses(2, as("t2"))).toEqual([200, 429]);
  });

  it("counts again once the window has ended", async () => {
    const { url } = await limitedApp([limited({ perMinute: 1, windowMs: 300 })]);
    expect(await statuses(2, () => postJson(`${url}/verify`, {}))).toEqual([200, 429]);
    await new Promise((r) => setTimeout(r, 350));
    expect(await statuses(2, () => postJson(`${url}/verify`, {}))).toEqual([200, 429]);
  });
});

describe("rateLimit with the Redis store", () => {
  let redis: RedisServer;
  const stores: RedisRateLimitStore[] = [];
  const store = (prefix: string) => {
    const s = new RedisRateLimitStore({ redis: redis.url, prefix });
    stores.push(s);
    return s;
  };
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await redis?.stop();
  });

  it("two API processes sharing one Redis share one limit", async () => {
    // Two apps, each with its own Redis client, stand in for two API processes.
    const a = await limitedApp([rateLimit({ perMinute: 4, store: store("shared:") })]);
    const b = await limitedApp([rateLimit({ perMinute: 4, store: store("shared:") })]);
    const got = await statuses(6, (i) => postJson(`${(i % 2 ? b : a).url}/verify`, {}));
    expect(got).toEqual([200, 200, 200, 200, 429, 429]);
    expect(a.counter.reached + b.counter.reached).toBe(4);
  });

  it("counts concurrent hits exactly once each, and every counter expires", async () => {
    const s1 = store("atomic:");
    const s2 = store("atomic:");
    const hits = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? s1 : s2).hit("caller", 60_000)));
    expect(hits.map((h) => h.count).sort((x, y) => x - y)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    const probe = new Redis(redis.url);
    try {
      const keys = await probe.keys("*");
      expect(keys.length).toBeGreaterThan(0);
      for (const k of keys) expect(await probe.pttl(k)).toBeGreaterThan(0);
    } finally {
      probe.disconnect();
    }
  });

  it("lets requests through (and warns once) while Redis is unreachable", async () => {
    const down = await startRedis();
    const downStore = new RedisRateLimitStore({ redis: down.url });
    const warnings: string[] = [];
    const { url, counter } = await limitedApp([
      rateLimit({ perMinute: 1, store: downStore, storeTimeoutMs: 200, logger: { warn: (_o, msg) => void warnings.push(msg) } }),
    ]);
    try {
      expect(await statuses(2, () => postJson(`${url}/verify`, {}))).toEqual([200, 429]);
      await down.stop();
      expect(await statuses(3, () => postJson(`${url}/verify`, {}))).toEqual([200, 200, 200]);
      expect(counter.reached).toBe(4);
      expect(warnings).toHaveLength(1);
    } finally {
      await downStore.close();
      await down.stop();
    }
  });
});

describe("rateLimit with the Redis store on a Redis Cluster", () => {
  let cluster: RedisCluster;
  const stores: RedisRateLimitStore[] = [];
  beforeAll(async () => {
    cluster = await startRedisCluster();
  });
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await cluster?.stop();
  });

  it("counts each caller's concurrent hits exactly once over two clients, each caller's counter where its key hashes", async () => {
    const [s1, s2] = [0, 1].map(() => new RedisRateLimitStore({ redis: cluster.url, prefix: "cl:" }));
    stores.push(s1!, s2!);
    const callers = Array.from({ length: 12 }, (_, i) => `ip:198.51.100.${i}`);
    const hits = await Promise.all(callers.flatMap((c) => Array.from({ length: 10 }, (_, i) => (i % 2 ? s1! : s2!).hit(c, 60_000).then((h) => [c, h.count] as const))));
    for (const c of callers) expect(hits.filter(([k]) => k === c).map(([, n]) => n).sort((x, y) => x - y)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    // No hash tag: the callers' counters spread over the primaries.
    const primaries = new Set(await Promise.all(callers.map((c) => cluster.primaryOf(`cl:${c}`))));
    expect(primaries.size).toBeGreaterThan(1);
  });
});

describe("defaultRateLimitKey", () => {
  const req = (ip: string, apiKeyId?: string) => ({ ip, socket: {}, res: { locals: apiKeyId ? { apiKeyId } : {} } }) as unknown as Parameters<typeof defaultRateLimitKey>[0];
  it("counts a key holder by its key, an IPv4 client by its address and an IPv6 client by its /64", () => {
    expect(defaultRateLimitKey(req("203.0.113.7", "k1"))).toBe("key:k1");
    expect(defaultRateLimitKey(req("203.0.113.7"))).toBe("ip:203.0.113.7");
    expect(defaultRateLimitKey(req("2001:db8:1:2::1"))).toBe(defaultRateLimitKey(req("2001:db8:1:2:ffff::9")));
    expect(defaultRateLimitKey(req("2001:db8:1:2::1"))).not.toBe(defaultRateLimitKey(req("2001:db8:1:3::1")));
  });
});
