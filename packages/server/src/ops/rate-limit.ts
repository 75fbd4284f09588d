/**
 * Fixed-window rate limits: at most `perMinute` requests per caller per window, then 429 with
 * `Retry-After` (the official v2 client honours it on /supported). The count lives in a store: in
 * memory for one process, or in Redis (one atomic script) so every API process shares one limit.
 */
import type { Request, RequestHandler } from "express";
import { openRedis, type RedisClient } from "@facilitator/redis";
import { Reason } from "@facilitator/core";
import { refuse } from "./rejection.ts";
import { clientKey } from "./trust-proxy.ts";

export interface RateLimitHit {
  /** Requests counted in the current window, this one included. */
  count: number;
  /** Time until the window ends and the count starts again. */
  resetInMs: number;
}

export interface RateLimitStore {
  /** Counts one request for `key` and tells where the window stands (at once when the count is local). */
  hit(key: string, windowMs: number): RateLimitHit | Promise<RateLimitHit>;
  close(): Promise<void>;
}

/** Counts in this process only: right for one API process (the embedded default). */
export class MemoryRateLimitStore implements RateLimitStore {
  private readonly windows = new Map<string, { count: number; resetAt: number }>();
  private nextSweep = 0;

  // Synchronous: a promise and a timeout timer per request cost more than the count itself.
  hit(key: string, windowMs: number): RateLimitHit {
    const now = Date.now();
    this.sweep(now, windowMs);
    let w = this.windows.get(key);
    if (!w || w.resetAt <= now) {
      w = { count: 0, resetAt: now + windowMs };
      this.windows.set(key, w);
    }
    w.count += 1;
    return { count: w.count, resetInMs: w.resetAt - now };
  }

  async close(): Promise<void> {
    this.windows.clear();
  }

  /** Drops ended windows now and then, so callers seen once do not stay in memory. */
  private sweep(now: number, windowMs: number): void {
    if (now < this.nextSweep) return;
    this.nextSweep = now + windowMs;
    for (const [k, w] of this.windows) if (w.resetAt <= now) this.windows.delete(k);
  }
}

/**
 * INCR and, for the window's first request, PEXPIRE, in one script so no process can see a counter
 * without an expiry (which would limit its key forever). Returns {count, ms until reset}.
 */
const HIT_SCRIPT = `
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
`;

type RateLimitCommands = { x402RateLimitHit(key: string, windowMs: number): Promise<[number, number]> };

export interface RedisRateLimitStoreOptions {
  /** A REDIS_URL (`redis://`, or `redis+cluster://` for a Redis Cluster; this store opens and closes its own client) or a client it borrows. */
  redis: string | RedisClient;
  /**
   * Prefix of every key this store writes; default `x402:ratelimit:`. No hash tag: each caller's counter
   * is a script of its own key, so on a Redis Cluster the counters spread over every slot.
   */
  prefix?: string;
}

/** Counts in Redis: every API process pointed at the same Redis shares the same limits. */
export class RedisRateLimitStore implements RateLimitStore {
  private readonly client: RedisClient & RateLimitCommands;
  private readonly owned: boolean;
  private readonly prefix: string;

  constructor(opts: RedisRateLimitStoreOptions) {
    this.owned = typeof opts.redis === "string";
    // An owned client gives up on a command quickly: the limiter lets requests through while Redis is away.
    const client = typeof opts.redis === "string" ? openRedis(opts.redis, { maxRetriesPerRequest: 1 }) : opts.redis;
    // Connection errors reach callers as failed hits (the limiter warns); without a listener ioredis prints each one.
    if (this.owned) client.on("error", () => {});
    client.defineCommand("x402RateLimitHit", { numberOfKeys: 1, lua: HIT_SCRIPT });
    this.client = client as RedisClient & RateLimitCommands;
    this.prefix = opts.prefix ?? "x402:ratelimit:";
  }

  async hit(key: string, windowMs: number): Promise<RateLimitHit> {
    const [count, ttl] = await this.client.x402RateLimitHit(this.prefix + key, windowMs);
    return { count: Number(count), resetInMs: Number(ttl) };
  }

  async close(): Promise<void> {
    if (this.owned) await this.client.quit().catch(() => this.client.disconnect());
  }
}

export interface RateLimitOptions {
  /** Requests allowed per caller per window; 0 switches the limiter off. */
  perMinute: number;
  store: RateLimitStore;
  /** Who a request counts against; default: the verified API key (see `apiKeyGuard`), else the client IP. */
  keyOf?: (req: Request) => string;
  /** Window length; 60 s unless told (tests use shorter ones). */
  windowMs?: number;
  /** How long to wait for the store before letting the request through anyway. */
  storeTimeoutMs?: number;
  /** Told (at most once a minute) when the store fails and requests pass unlimited. */
  logger?: { warn(obj: object, msg: string): void };
}

/**
 * Keys by the API key id that `apiKeyGuard` verified, not by whatever key a caller sends: otherwise
 * a caller could mint a fresh bucket per request by sending made-up keys.
 */
export function defaultRateLimitKey(req: Request): string {
  const keyId = req.res?.locals.apiKeyId as string | undefined;
  // An IPv6 client is its /64: one host holds a whole /64, and would otherwise get a bucket per address.
  return keyId ? `key:${keyId}` : `ip:${clientKey(req.ip ?? req.socket.remoteAddress)}`;
}

/** Express middleware enforcing `perMinute`; place it after `apiKeyGuard` so keys get their own buckets. */
export function rateLimit(opts: RateLimitOptions): RequestHandler {
  if (!opts.perMinute) return (_req, _res, next) => next();
  const windowMs = opts.windowMs ?? 60_000;
  const keyOf = opts.keyOf ?? defaultRateLimitKey;
  const storeTimeoutMs = opts.storeTimeoutMs ?? 500;
  let lastWarning = 0;

  return async (req, res, next) => {
    let hit: RateLimitHit;
    try {
      const counted = opts.store.hit(keyOf(req), windowMs);
      hit = counted instanceof Promise ? await withTimeout(counted, storeTimeoutMs) : counted;
    } catch (err) {
      // A limiter outage must not take payments down with it: let the request through, and say so.
      if (Date.now() - lastWarning > 60_000) {
        lastWarning = Date.now();
        opts.logger?.warn({ err: (err as Error).message }, "rate limit store unavailable; requests pass unlimited");
      }
      return next();
    }
    if (hit.count <= opts.perMinute) return next();
    const retryAfter = Math.max(1, Math.ceil(hit.resetInMs / 1000));
    res.set("Retry-After", String(retryAfter));
    refuse(req, res, 429, Reason.rateLimited, `rate limit of ${opts.perMinute} requests per ${windowMs / 1000} s reached; retry in ${retryAfter} s`);
  };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
