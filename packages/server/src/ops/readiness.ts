/**
 * GET /ready: 200 when every dependency answers, 503 naming each one that does not. Every check has
 * its own time limit, so /ready answers within about that limit even when a dependency hangs; the
 * report is cached (READINESS_CACHE_MS), and only callers with a detail key see what each check saw.
 * Details never carry a URL: RPC and Redis URLs often hold API keys or passwords.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { Router, type Request } from "express";
import type { Redis } from "ioredis";
import { isCluster, openRedis, type RedisClient } from "@facilitator/redis";
import { presentedApiKey } from "./auth.ts";

export interface CheckResult {
  ok: boolean;
  /** What was seen, for an operator (no secrets). */
  detail?: string;
}

export interface ReadinessCheck {
  name: string;
  /** `signal` aborts when the check's time is up; checks doing I/O should pass it on. */
  check(signal: AbortSignal): Promise<CheckResult>;
  /** Overrides the router's per-check limit. */
  timeoutMs?: number;
}

export interface ReadinessReport {
  ready: boolean;
  checks: ({ name: string } & CheckResult)[];
}

export const DEFAULT_CHECK_TIMEOUT_MS = 2000;

/** Runs every check at once, each bounded by its limit; a throw or a timeout counts as a failure. */
export async function runReadinessChecks(checks: readonly ReadinessCheck[], timeoutMs = DEFAULT_CHECK_TIMEOUT_MS): Promise<ReadinessReport> {
  const results = await Promise.all(checks.map(async (c) => ({ name: c.name, ...(await runOne(c, c.timeoutMs ?? timeoutMs)) })));
  return { ready: results.every((r) => r.ok), checks: results };
}

async function runOne(c: ReadinessCheck, timeoutMs: number): Promise<CheckResult> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<CheckResult>((resolve) => {
    timer = setTimeout(() => {
      controller.abort();
      resolve({ ok: false, detail: `no answer within ${timeoutMs} ms` });
    }, timeoutMs);
  });
  try {
    const answered = Promise.resolve()
      .then(() => c.check(controller.signal))
      .catch((e: unknown): CheckResult => ({ ok: false, detail: errorDetail(e) }));
    return await Promise.race([answered, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

export interface ReadinessRouterOptions {
  /** Per-check time limit (ms); default DEFAULT_CHECK_TIMEOUT_MS. */
  timeoutMs?: number;
  path?: string;
  /** How long a report answers every probe (ms, from when it was made); default READINESS_CACHE_MS. */
  cacheMs?: number;
  /**
   * Callers presenting one of these keys (`Authorization: Bearer <key>` or `x-api-key`) get every
   * check with its detail; the facilitator passes METRICS_API_KEY. Everyone else gets the status and
   * the names of the failing checks only.
   */
  detailKeys?: readonly string[];
  /** Told, once per fresh report that is not ready, each failing check and its detail. */
  logger?: { warn(obj: object, msg: string): void };
}

/** A readiness report answers every probe for this long: a burst of probes is one run of the checks. */
export const READINESS_CACHE_MS = 15_000;

/**
 * Serves GET /ready. The report is made at most once per `cacheMs` whatever the number of probes,
 * and probes arriving while it is being made share that run: anonymous callers cannot turn /ready
 * into load on the RPC nodes. Anonymous callers learn the status and the names of the failing
 * checks; the details (balances, chain ids, errors) go to callers with a detail key and to the log.
 * Check names carry no address, URL or balance.
 */
export function readinessRouter(checks: readonly ReadinessCheck[], opts: ReadinessRouterOptions = {}): Router {
  const router = Router();
  const cacheMs = opts.cacheMs ?? READINESS_CACHE_MS;
  const mayReadDetails = keyMatcher(opts.detailKeys ?? []);
  let running: Promise<ReadinessReport> | undefined;
  let last: { at: number; report: ReadinessReport } | undefined;
  const current = (): Promise<ReadinessReport> => {
    if (last && Date.now() - last.at < cacheMs) return Promise.resolve(last.report);
    running ??= runReadinessChecks(checks, opts.timeoutMs)
      .then((report) => {
        last = { at: Date.now(), report };
        if (!report.ready) {
          const failing = report.checks.filter((c) => !c.ok).map((c) => ({ name: c.name, detail: c.detail }));
          opts.logger?.warn({ failing }, "not ready");
        }
        return report;
      })
      .finally(() => (running = undefined));
    return running;
  };

  router.get(opts.path ?? "/ready", async (req, res) => {
    const report = await current();
    const details = mayReadDetails(req) ? { checks: report.checks } : {};
    res.set("Cache-Control", "no-store");
    if (report.ready) return void res.status(200).json({ status: "ready", ...details });
    const failing = report.checks.filter((c) => !c.ok).map((c) => c.name);
    res.locals.outcome = "not_ready";
    res.status(503).json({
      status: "not_ready",
      error: "service_unavailable",
      message: `not ready: ${failing.join(", ")}`,
      failing,
      ...details,
    });
  });
  return router;
}

/** Whether a request presents one of `keys`, compared as SHA-256 digests in constant time. */
function keyMatcher(keys: readonly string[]): (req: Request) => boolean {
  const digest = (key: string) => createHash("sha256").update(key, "utf8").digest();
  const accepted = keys.filter(Boolean).map(digest);
  if (accepted.length === 0) return () => false;
  return (req) => {
    const key = presentedApiKey(req);
    if (key === undefined) return false;
    const presented = digest(key);
    let match = false;
    for (const k of accepted) match = timingSafeEqual(presented, k) || match;
    return match;
  };
}

// ---- check factories ----

/**
 * The chain's RPC answers: EVM `eth_chainId` (and, with `chainId`, that it is the expected chain),
 * Solana `getHealth` (`ok` unless the node says it is behind).
 */
export function rpcCheck(name: string, rpcUrl: string, opts: { family?: "evm" | "svm"; chainId?: number } = {}): ReadinessCheck {
  const family = opts.family ?? "evm";
  return {
    name,
    async check(signal) {
      if (family === "svm") {
        const health = await jsonRpc<string>(rpcUrl, "getHealth", [], signal);
        return { ok: health === "ok", detail: `getHealth: ${health}` };
      }
      const chainId = Number(BigInt(await jsonRpc<string>(rpcUrl, "eth_chainId", [], signal)));
      if (opts.chainId !== undefined && chainId !== opts.chainId) return { ok: false, detail: `chain id ${chainId}, expected ${opts.chainId}` };
      return { ok: true, detail: `chain id ${chainId}` };
    },
  };
}

/**
 * Redis answers PING (a Redis Cluster: the node asked says `cluster_state:ok`, every slot served), on a
 * client the app already holds, or on a short-lived connection to a REDIS_URL.
 */
export function redisCheck(redis: Redis | string, name = "redis"): ReadinessCheck {
  return {
    name,
    async check(signal) {
      if (typeof redis !== "string") return answers(redis);
      const client = openRedis(redis, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null }, { clusterRetryStrategy: () => null });
      let lastError: unknown;
      client.on("error", (e) => (lastError = e)); // connect() only says "Connection is closed."; this says why
      const abort = () => client.disconnect();
      signal.addEventListener("abort", abort, { once: true });
      try {
        await client.connect().catch((e) => {
          throw lastError ?? e;
        });
        return await answers(client);
      } finally {
        signal.removeEventListener("abort", abort);
        client.disconnect();
      }
    },
  };
}

async function answers(client: RedisClient): Promise<CheckResult> {
  if (!isCluster(client)) return { ok: (await client.ping()) === "PONG", detail: "PING answered" };
  const state = /cluster_state:(\w+)/.exec(String(await client.cluster("INFO")))?.[1] ?? "unknown";
  return { ok: state === "ok", detail: `cluster_state:${state}` };
}

/** The Walrus aggregator answers HTTP at all: any status below 500 means the service is up. */
export function walrusCheck(aggregatorUrl: string, name = "walrus"): ReadinessCheck {
  return {
    name,
    async check(signal) {
      const res = await fetch(aggregatorUrl, { signal });
      await res.body?.cancel();
      return { ok: res.status < 500, detail: `HTTP ${res.status}` };
    },
  };
}

/**
 * A signer holds at least `minWei` of the native currency (enough gas for the next settlements). The
 * name says which signer without its address (anonymous callers see the names of failing checks);
 * the address and the balance are in the detail.
 */
export function signerBalanceCheck(opts: { rpcUrl: string; address: string; minWei: bigint; name?: string }): ReadinessCheck {
  return {
    name: opts.name ?? "signer balance",
    async check(signal) {
      const balance = BigInt(await jsonRpc<string>(opts.rpcUrl, "eth_getBalance", [opts.address, "latest"], signal));
      return balance >= opts.minWei
        ? { ok: true, detail: `${opts.address}: ${balance} wei` }
        : { ok: false, detail: `${opts.address}: ${balance} wei, below the minimum of ${opts.minWei} wei` };
    },
  };
}

/** One balance check per signer, named `gas <network> signer <n>` (n counts from 1 within each network). */
export function signerBalanceChecks(signers: readonly { network: string; rpcUrl: string; address: string }[], minWei: bigint): ReadinessCheck[] {
  const seen = new Map<string, number>();
  return signers.map(({ network, rpcUrl, address }) => {
    const n = (seen.get(network) ?? 0) + 1;
    seen.set(network, n);
    return signerBalanceCheck({ rpcUrl, address, minWei, name: `gas ${network} signer ${n}` });
  });
}

/** One JSON-RPC call; errors name the method and what went wrong, never the URL. */
async function jsonRpc<T>(url: string, method: string, params: unknown[], signal: AbortSignal): Promise<T> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
    signal,
  });
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`${method}: HTTP ${res.status}`);
  }
  const body = (await res.json().catch(() => undefined)) as { result?: T; error?: { code?: number; message?: string } } | undefined;
  if (!body) throw new Error(`${method}: the answer is not JSON`);
  if (body.error) throw new Error(`${method}: error ${body.error.code ?? ""} ${String(body.error.message ?? "").slice(0, 200)}`.trim());
  if (body.result === undefined) throw new Error(`${method}: no result in the answer`);
  return body.result;
}

/** A failure as an operator reads it: the connection error code for network failures (no address, no URL). */
function errorDetail(e: unknown): string {
  const err = e as { name?: string; message?: string; code?: string; cause?: { code?: string } };
  if (err?.name === "AbortError") return "aborted";
  const code = err?.cause?.code ?? err?.code;
  if (err?.message === "fetch failed" || (code && /^E[A-Z]+$/.test(code))) return `unreachable (${code ?? "network error"})`;
  return String(err?.message ?? e).slice(0, 300);
}
