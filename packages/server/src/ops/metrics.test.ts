import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiKeyGuard } from "./auth.ts";
import { cachedSource, createMetrics, labelValue, metricsRouter, recordPaymentOutcome, type Metrics } from "./metrics.ts";
import { listen, postJson, type Listening } from "../testing/http.ts";

/** Parses Prometheus text into samples: name, labels, value. */
function parse(text: string) {
  return text
    .split("\n")
    .filter((l) => l && !l.startsWith("#"))
    .map((l) => {
      const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(l);
      if (!m) throw new Error(`unparseable line: ${l}`);
      const labels = Object.fromEntries([...(m[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
      return { name: m[1]!, labels, value: Number(m[3]) };
    });
}
type Sample = ReturnType<typeof parse>[number];
const value = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
  samples.find((s) => s.name === name && Object.keys(labels).length === Object.keys(s.labels).filter((k) => k !== "le").length && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

describe("metrics on an app", () => {
  let metrics: Metrics;
  let srv: Listening;
  const state = { unconfirmed: 3, depth: 7 };
  let clientGone: Promise<void>;
  let release: () => void = () => {};
  let markEntered: () => void;
  const entered = new Promise<void>((r) => (markEntered = r));

  beforeAll(async () => {
    metrics = createMetrics({
      processMetrics: false,
      sourceTimeoutMs: 200,
      ledgerUnconfirmed: async () => state.unconfirmed,
      queueDepth: () => state.depth,
      oldestQueuedAgeSeconds: () => new Promise(() => {}), // never answers: must not hang the scrape
      signerBalances: async () => [
        { network: "base-sepolia", address: "0x00000000000000000000000000000000000000aa", wei: 10n ** 18n },
        { network: "og-evm", address: "0x00000000000000000000000000000000000000bb", wei: 5n },
      ],
    });
    const app = express();
    app.use(express.json());
    app.use(metricsRouter(metrics));
    const guards = [recordPaymentOutcome(metrics), apiKeyGuard(["ops-key"])];
    app.post("/verify", ...guards, (req, res) => {
      res.locals.outcome = req.body.valid ? "valid" : "invalid_exact_evm_payload_signature";
      res.locals.network = req.body.network;
      res.json({ isValid: !!req.body.valid });
    });
    app.post("/settle", ...guards, async (req, res) => {
      if (req.body.hang) {
        clientGone = new Promise((resolve) => res.once("close", () => resolve()));
        markEntered();
        await new Promise<void>((r) => (release = r));
      }
      res.locals.outcome = req.body.outcome;
      res.locals.network = req.body.network;
      res.json({ success: req.body.outcome === "success", transaction: "", network: req.body.network });
    });
    srv = await listen(app);
  });
  afterAll(async () => {
    release();
    await srv?.close();
  });

  const scrape = async () => {
    const res = await fetch(`${srv.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    return parse(await res.text());
  };
  const auth = { "x-api-key": "ops-key" };

  it("counts /verify and /settle answers by network and outcome, with latencies by network", async () => {
    await postJson(`${srv.url}/verify`, { valid: true, network: "base-sepolia" }, auth);
    await postJson(`${srv.url}/verify`, { valid: true, network: "base-sepolia" }, auth);
    await postJson(`${srv.url}/verify`, { valid: false, network: "eip155:84532" }, auth);
    await postJson(`${srv.url}/settle`, { outcome: "success", network: "base-sepolia" }, auth);
    await postJson(`${srv.url}/settle`, { outcome: "duplicate_settlement", network: "base-sepolia" }, auth);
    await postJson(`${srv.url}/settle`, { outcome: "x" }, { "x-api-key": "wrong" }); // refused by the guard

    const s = await scrape();
    expect(value(s, "x402_verify_requests_total", { network: "base-sepolia", outcome: "valid" })).toBe(2);
    expect(value(s, "x402_verify_requests_total", { network: "eip155:84532", outcome: "invalid_exact_evm_payload_signature" })).toBe(1);
    expect(value(s, "x402_settle_requests_total", { network: "base-sepolia", outcome: "success" })).toBe(1);
    expect(value(s, "x402_settle_requests_total", { network: "base-sepolia", outcome: "duplicate_settlement" })).toBe(1);
    expect(value(s, "x402_settle_requests_total", { network: "unknown", outcome: "unauthorized" })).toBe(1);
    expect(value(s, "x402_verify_duration_seconds_count", { network: "base-sepolia" })).toBe(2);
    expect(value(s, "x402_settle_duration_seconds_count", { network: "base-sepolia" })).toBe(2);
    expect(value(s, "x402_verify_duration_seconds_sum", { network: "base-sepolia" })).toBeGreaterThan(0);
  });

  it("reads ledger, queue and signer gauges at scrape time", async () => {
    let s = await scrape();
    expect(value(s, "x402_ledger_unconfirmed")).toBe(3);
    expect(value(s, "x402_inference_queue_depth")).toBe(7);
    expect(value(s, "x402_signer_balance_wei", { network: "base-sepolia", address: "0x00000000000000000000000000000000000000aa" })).toBe(1e18);
    expect(value(s, "x402_signer_balance_wei", { network: "og-evm", address: "0x00000000000000000000000000000000000000bb" })).toBe(5);
    state.unconfirmed = 0;
    state.depth = 12;
    s = await scrape();
    expect(value(s, "x402_ledger_unconfirmed")).toBe(0);
    expect(value(s, "x402_inference_queue_depth")).toBe(12);
  });

  it("a source that does not answer reads NaN and is marked down; the scrape still succeeds", async () => {
    const s = await scrape();
    expect(value(s, "x402_inference_oldest_queued_age_seconds")).toBeNaN();
    expect(value(s, "x402_metrics_source_up", { source: "oldestQueuedAgeSeconds" })).toBe(0);
    expect(value(s, "x402_metrics_source_up", { source: "ledgerUnconfirmed" })).toBe(1);
  });

  it("counts batches anchored and gas spent by network and role", async () => {
    metrics.batchAnchored();
    metrics.batchAnchored(2);
    metrics.gasSpent({ network: "base-sepolia", role: "facilitator", wei: 21_000n * 10n ** 9n });
    metrics.gasSpent({ network: "base-sepolia", role: "relayer", wei: 5 });
    metrics.gasSpent({ network: "base-sepolia", role: "relayer", wei: -1n }); // ignored, never throws
    const s = await scrape();
    expect(value(s, "x402_batches_anchored_total")).toBe(3);
    expect(value(s, "x402_gas_spent_wei_total", { network: "base-sepolia", role: "facilitator" })).toBe(21_000e9);
    expect(value(s, "x402_gas_spent_wei_total", { network: "base-sepolia", role: "relayer" })).toBe(5);
  });

  it("counts a settle whose caller hung up as client_closed_request", async () => {
    const controller = new AbortController();
    const sent = fetch(`${srv.url}/settle`, {
      method: "POST",
      headers: { "content-type": "application/json", ...auth },
      body: JSON.stringify({ hang: true, outcome: "success", network: "og-evm" }),
      signal: controller.signal,
    }).catch(() => "aborted");
    await entered;
    controller.abort();
    expect(await sent).toBe("aborted");
    await clientGone;
    release();
    const s = await scrape();
    expect(value(s, "x402_settle_requests_total", { network: "unknown", outcome: "client_closed_request" })).toBe(1);
    expect(value(s, "x402_settle_requests_total", { network: "og-evm", outcome: "success" })).toBeUndefined();
  });
});

describe("createMetrics", () => {
  it("gives each instance its own registry, so two apps in one process do not collide", async () => {
    const a = createMetrics();
    const b = createMetrics();
    a.observePayment("verify", { network: "base", outcome: "valid", seconds: 0.01 });
    expect(await a.registry.getSingleMetricAsString("x402_verify_requests_total")).toContain('outcome="valid"} 1');
    expect(await b.registry.getSingleMetricAsString("x402_verify_requests_total")).not.toContain('outcome="valid"');
    expect(await a.registry.metrics()).toContain("process_cpu_user_seconds_total");
  });

  it("shows a state gauge only once its source is given", async () => {
    const m = createMetrics({ processMetrics: false });
    expect(await m.registry.metrics()).not.toContain("x402_inference_queue_depth");
    m.setSources({ queueDepth: () => 4 });
    expect(await m.registry.getSingleMetricAsString("x402_inference_queue_depth")).toContain("x402_inference_queue_depth 4");
  });

  it.each([
    [undefined, "unknown"],
    ["", "unknown"],
    ["base-sepolia", "base-sepolia"],
    ["eip155:84532", "eip155:84532"],
    ["solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1", "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"],
    ['bad"label', "other"],
    ["x".repeat(101), "other"],
  ])("labelValue(%j) = %j", (input, expected) => {
    expect(labelValue(input)).toBe(expected);
  });
});

describe("METRICS_API_KEY", () => {
  it("asks a scrape for the bearer key, and answers it with the metrics", async () => {
    const metrics = createMetrics({ processMetrics: false });
    metrics.batchAnchored();
    const app = express();
    app.use(metricsRouter(metrics, { apiKey: "scrape-key-5d1c" }));
    const srv = await listen(app);
    try {
      const none = await fetch(`${srv.url}/metrics`);
      expect(none.status).toBe(401);
      expect(await none.text()).not.toContain("x402_batches_anchored_total");
      const wrong = await fetch(`${srv.url}/metrics`, { headers: { authorization: "Bearer scrape-key-5d1d" } });
      expect(wrong.status).toBe(401);
      const right = await fetch(`${srv.url}/metrics`, { headers: { authorization: "Bearer scrape-key-5d1c" } });
      expect(right.status).toBe(200);
      expect(await right.text()).toContain("x402_batches_anchored_total 1");
    } finally {
      await srv.close();
    }
  });
});

describe("cachedSource", () => {
  it("reads the source once per period, however often and however concurrently it is scraped", async () => {
    let reads = 0;
    const source = cachedSource(async () => {
      reads++;
      await new Promise((r) => setTimeout(r, 20));
      return reads;
    }, 150);
    expect(await Promise.all([source(), source(), source()])).toEqual([1, 1, 1]);
    expect(await source()).toBe(1);
    await new Promise((r) => setTimeout(r, 160));
    expect(await source()).toBe(2);
    expect(reads).toBe(2);
  });

  it("keeps a failed read for the period too, so a node in trouble is not asked on every scrape", async () => {
    let reads = 0;
    const source = cachedSource(() => {
      reads++;
      throw new Error("node down");
    }, 10_000);
    await expect(source()).rejects.toThrow("node down");
    await expect(source()).rejects.toThrow("node down");
    expect(reads).toBe(1);
  });

  it("feeds the signer-balance gauge: five scrapes, one read", async () => {
    let reads = 0;
    const metrics = createMetrics({
      processMetrics: false,
      signerBalances: cachedSource(async () => {
        reads++;
        return [{ network: "base", address: "0x00000000000000000000000000000000000000aa", wei: 7n }];
      }, 60_000),
    });
    for (let i = 0; i < 5; i++) expect(await metrics.registry.getSingleMetricAsString("x402_signer_balance_wei")).toContain("} 7");
    expect(reads).toBe(1);
  });
});
