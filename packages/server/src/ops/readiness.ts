/**
 * GET /ready: 200 when every dependency answers, 503 naming each one that does not. Every check has
 * its own time limit, so /ready answers within about that limit even when a dependency hangs.
 * Details never carry a URL: RPC and Redis URLs often hold API keys or passwords.
 */
import { Router } from "express";
import { Redis } from "ioredis";

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

/**
 * Serves GET /ready. Requests arriving while a run is under way share its result, so a burst of
 * probes does not multiply the load on the dependencies.
 */
export function readinessRouter(checks: readonly ReadinessCheck[], opts: { timeoutMs?: number; path?: string } = {}): Router {
  const router = Router();
  let running: Promise<ReadinessReport> | undefined;
  router.get(opts.path ?? "/ready", async (_req, res) => {
    running ??= runReadinessChecks(checks, opts.timeoutMs).finally(() => (running = undefined));
    const report = await running;
    res.set("Cache-Control", "no-store");
    if (report.ready) return void res.status(200).json({ status: "ready", checks: report.checks });
    const failing = report.checks.filter((c) => !c.ok).map((c) => c.name);
    res.locals.outcome = "not_ready";
    res.status(503).json({
      status: "not_ready",
      error: "service_unavailable",
      message: `not ready: ${failing.join(", ")}`,
      failing,
      checks: report.checks,
    });
  });
  return router;
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

/** Redis answers PING: on a client the app already holds, or on a short-lived connection to a URL. */
export function redisCheck(redis: Redis | string, name = "redis"): ReadinessCheck {
  return {
    name,
    async check(signal) {
      if (typeof redis !== "string") return { ok: (await redis.ping()) === "PONG", detail: "PING answered" };
      const client = new Redis(redis, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
      let lastError: unknown;
      client.on("error", (e) => (lastError = e)); // connect() only says "Connection is closed."; this says why
      const abort = () => client.disconnect();
      signal.addEventListener("abort", abort, { once: true });
      try {
        await client.connect().catch((e) => {
          throw lastError ?? e;
        });
        return { ok: (await client.ping()) === "PONG", detail: "PING answered" };
      } finally {
        signal.removeEventListener("abort", abort);
        client.disconnect();
      }
    },
  };
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

/** A signer holds at least `minWei` of the native currency (enough gas for the next settlements). */
export function signerBalanceCheck(opts: { rpcUrl: string; address: string; minWei: bigint; name?: string }): ReadinessCheck {
  return {
    name: opts.name ?? `balance ${opts.address}`,
    async check(signal) {
      const balance = BigInt(await jsonRpc<string>(opts.rpcUrl, "eth_getBalance", [opts.address, "latest"], signal));
      return balance >= opts.minWei
        ? { ok: true, detail: `${balance} wei` }
        : { ok: false, detail: `${balance} wei, below the minimum of ${opts.minWei} wei` };
    },
  };
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
