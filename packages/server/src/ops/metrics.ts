/**
 * Prometheus metrics on a registry of their own (not prom-client's global one), so tests and several
 * apps in one process never collide. Counters and histograms are fed by the app; gauges that describe
 * state elsewhere (ledger, queue, signer balances) are read from callbacks at scrape time, each bounded
 * by a timeout so a slow RPC or Redis cannot hang /metrics.
 */
import { Router, type RequestHandler } from "express";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { apiKeyGuard } from "./auth.ts";

export interface SignerBalance {
  network: string;
  address: string;
  /** Native balance in the chain's smallest unit (wei, lamports). */
  wei: bigint | number;
}

/** State read at scrape time. Each is optional; its gauge appears in /metrics once it is given. */
export interface MetricsSources {
  /** Ledger entries broadcast but not yet confirmed (`SettlementLedger.countUnconfirmed`). */
  ledgerUnconfirmed?: () => Promise<number> | number;
  /** Inference records waiting to be batched. */
  queueDepth?: () => Promise<number> | number;
  /** Age of the oldest waiting inference record in seconds (undefined or 0 when none waits). */
  oldestQueuedAgeSeconds?: () => Promise<number | undefined> | number | undefined;
  /** Native balances of the signers (facilitator, fee payers, relayer). */
  signerBalances?: () => Promise<SignerBalance[]> | SignerBalance[];
}

export interface CreateMetricsOptions extends MetricsSources {
  /** Node process metrics (CPU, memory, event loop lag) too; default true. */
  processMetrics?: boolean;
  /** Longest a source may take at scrape time; default 2000 ms. */
  sourceTimeoutMs?: number;
}

type ScalarSource = "ledgerUnconfirmed" | "queueDepth" | "oldestQueuedAgeSeconds";

export type PaymentEndpoint = "verify" | "settle";

export interface PaymentObservation {
  network?: string;
  /** `valid`, `success`, or the reason string of a refusal. */
  outcome?: string;
  seconds: number;
}

export interface Metrics {
  readonly registry: Registry;
  /** Counts one /verify or /settle answer and its latency. */
  observePayment(endpoint: PaymentEndpoint, o: PaymentObservation): void;
  /** Counts batches whose root was anchored on chain. */
  batchAnchored(count?: number): void;
  /** Adds the gas a transaction cost (gasUsed x effectiveGasPrice) to its network and signer role. */
  gasSpent(o: { network: string; role: string; wei: bigint | number }): void;
  /** Adds or replaces scrape-time sources (e.g. the queue, once the worker side exists). */
  setSources(sources: MetricsSources): void;
}

/** Latency buckets from a cached verify (milliseconds) to a settle near the official clients' 90 s timeout. */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 90];

/** Label values come from requests: keep them short and plain so a caller cannot blow up the series count. */
export function labelValue(v: unknown): string {
  if (v === undefined || v === null || v === "") return "unknown";
  const s = String(v);
  return /^[A-Za-z0-9_:.-]{1,100}$/.test(s) ? s : "other";
}

export function createMetrics(opts: CreateMetricsOptions = {}): Metrics {
  const registry = new Registry();
  const registers = [registry];
  if (opts.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  const { ledgerUnconfirmed, queueDepth, oldestQueuedAgeSeconds, signerBalances } = opts;
  const sources: MetricsSources = { ledgerUnconfirmed, queueDepth, oldestQueuedAgeSeconds, signerBalances };
  const timeoutMs = opts.sourceTimeoutMs ?? 2000;

  const sourceUp = new Gauge({
    name: "x402_metrics_source_up",
    help: "1 when the scrape-time source answered in time at the last scrape, 0 when it failed (its gauge then reads NaN)",
    labelNames: ["source"],
    registers,
  });
  /** Reads a source for a gauge within the timeout; `ok: false` when it threw or took too long. */
  const read = async <T>(name: string, source: () => Promise<T> | T): Promise<{ ok: true; value: T } | { ok: false }> => {
    try {
      const value = await withTimeout(Promise.resolve().then(source), timeoutMs);
      sourceUp.set({ source: name }, 1);
      return { ok: true, value };
    } catch {
      sourceUp.set({ source: name }, 0);
      return { ok: false };
    }
  };
  const scalarGauges: Record<ScalarSource, { name: string; help: string }> = {
    ledgerUnconfirmed: { name: "x402_ledger_unconfirmed", help: "Settlements broadcast whose confirmation has not been seen yet" },
    queueDepth: { name: "x402_inference_queue_depth", help: "Inference records waiting to be batched" },
    oldestQueuedAgeSeconds: { name: "x402_inference_oldest_queued_age_seconds", help: "Age of the oldest waiting inference record" },
  };
  const registered = new Set<keyof MetricsSources>();
  /** Registers a gauge once its source exists, so /metrics never shows a made-up zero for state nobody reads. */
  const registerGauges = () => {
    for (const source of Object.keys(scalarGauges) as ScalarSource[]) {
      if (!sources[source] || registered.has(source)) continue;
      registered.add(source);
      new Gauge({
        ...scalarGauges[source],
        registers,
        async collect() {
          const r = await read<number | undefined>(source, sources[source]!);
          // NaN says "unknown": a failed read must not look like an empty queue or a stale count.
          this.set(r.ok ? Number(r.value ?? 0) : NaN);
        },
      });
    }
    if (sources.signerBalances && !registered.has("signerBalances")) {
      registered.add("signerBalances");
      new Gauge({
        name: "x402_signer_balance_wei",
        help: "Native balance of each signer, by network and address",
        labelNames: ["network", "address"],
        registers,
        async collect() {
          const r = await read("signerBalances", sources.signerBalances!);
          this.reset(); // signers that went away (or an unreadable source) must not linger with their last value
          for (const b of r.ok ? r.value : []) this.set({ network: labelValue(b.network), address: labelValue(b.address) }, Number(b.wei));
        },
      });
    }
  };
  registerGauges();

  const verifyTotal = new Counter({ name: "x402_verify_requests_total", help: "POST /verify answers by network and outcome (valid or the reason)", labelNames: ["network", "outcome"], registers });
  const settleTotal = new Counter({ name: "x402_settle_requests_total", help: "POST /settle answers by network and outcome (success or the reason)", labelNames: ["network", "outcome"], registers });
  const verifySeconds = new Histogram({ name: "x402_verify_duration_seconds", help: "POST /verify latency", labelNames: ["network"], buckets: LATENCY_BUCKETS, registers });
  const settleSeconds = new Histogram({ name: "x402_settle_duration_seconds", help: "POST /settle latency", labelNames: ["network"], buckets: LATENCY_BUCKETS, registers });
  const batches = new Counter({ name: "x402_batches_anchored_total", help: "Inference batches anchored on chain", registers });
  const gas = new Counter({ name: "x402_gas_spent_wei_total", help: "Native currency spent on gas, by network and signer role", labelNames: ["network", "role"], registers });

  return {
    registry,
    observePayment(endpoint, o) {
      const network = labelValue(o.network);
      (endpoint === "verify" ? verifyTotal : settleTotal).inc({ network, outcome: labelValue(o.outcome) });
      (endpoint === "verify" ? verifySeconds : settleSeconds).observe({ network }, o.seconds);
    },
    batchAnchored(count = 1) {
      if (count > 0) batches.inc(count);
    },
    gasSpent({ network, role, wei }) {
      if (!(Number(wei) > 0)) return; // a counter only goes up; a metrics call must never throw into the caller
      gas.inc({ network: labelValue(network), role: labelValue(role) }, Number(wei));
    },
    setSources(more) {
      Object.assign(sources, more);
      registerGauges();
    },
  };
}

/**
 * Express middleware recording every POST /verify and /settle answer: outcome and network from
 * `res.locals` (the routes set them), latency from here to the end of the response. Mount it before
 * the guards so refusals (unauthorized, rate_limited) are counted too.
 */
export function recordPaymentOutcome(metrics: Metrics): RequestHandler {
  return (req, res, next) => {
    const endpoint = req.method !== "POST" ? undefined : /\/verify\/?$/.test(req.path) ? "verify" : /\/settle\/?$/.test(req.path) ? "settle" : undefined;
    if (!endpoint) return next();
    const started = process.hrtime.bigint();
    let recorded = false;
    const record = () => {
      if (recorded) return;
      recorded = true;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      // A caller that hangs up before the answer is counted as such: its outcome never reached it.
      const outcome = res.writableFinished ? (res.locals.outcome ?? `http_${res.statusCode}`) : "client_closed_request";
      metrics.observePayment(endpoint, { network: res.locals.network, outcome, seconds });
    };
    res.once("finish", record);
    res.once("close", record);
    next();
  };
}

export interface MetricsRouterOptions {
  path?: string;
  /** When set, a scrape must send `Authorization: Bearer <apiKey>` (Prometheus: `authorization: {credentials: ...}`). */
  apiKey?: string;
}

/** GET /metrics in the Prometheus text format (a string argument is the path, as before). */
export function metricsRouter(metrics: Metrics, opts: string | MetricsRouterOptions = {}): Router {
  const { path = "/metrics", apiKey } = typeof opts === "string" ? { path: opts } : opts;
  const router = Router();
  const guards = apiKey ? [apiKeyGuard([apiKey])] : [];
  router.get(path, ...guards, async (_req, res) => {
    res.set("Content-Type", metrics.registry.contentType);
    res.send(await metrics.registry.metrics());
  });
  return router;
}

/**
 * A scrape-time source read at most once per `ttlMs`: scrapes in between (and concurrent ones) share
 * the last answer, so scraping often, or many scrapers, does not turn into RPC calls. A failed read is
 * kept as long as a good one, so a node in trouble is not asked on every scrape either.
 */
export function cachedSource<T>(source: () => Promise<T> | T, ttlMs: number): () => Promise<T> {
  let last: { at: number; value: Promise<T> } | undefined;
  return () => {
    if (!last || Date.now() - last.at >= ttlMs) {
      const value = Promise.resolve().then(source);
      value.catch(() => {}); // read by the scrape; unhandled only until then
      last = { at: Date.now(), value };
    }
    return last.value;
  };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
