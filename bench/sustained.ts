/**
 * Sustained anchoring, door to chain (a benchmark, not a test): the facilitator as operators scale it
 * (API processes with RUN_WORKER=false and `worker` processes, each its own OS process configured by
 * environment, test/helpers/processes.ts) on a local base-sepolia anvil, the local Walrus service and a
 * SettlementRelay, under a closed-loop load of fresh records through the inference door for a fixed time;
 * then nothing more is sent and the run goes on until the queue is empty. Every second it samples the
 * shared queue: records acknowledged, anchored, waiting, and the age of the oldest waiting record.
 *
 *   pnpm exec tsx bench/sustained.ts [--deployments single,cluster] [--seconds 60] [--batch 4096]
 *     [--batch-timeout-ms 2000] [--in-flight 3] [--connections 16] [--per-request 100] [--rate 0]
 *     [--drain-seconds 300] [--profile <dir>]
 *
 * single: one append-only redis-server (fsync always), one API process, one worker. cluster: a local
 * Redis Cluster (3 primaries with a replica each, append-only, cluster-node-timeout 5 s;
 * REDIS_WAIT_REPLICAS=1, the queue in 3 partitions), two API processes and two workers. `--rate` caps the offered load in records/s (0: as
 * fast as the door answers). Writes bench/results/sustained-<time>.json and one SVG per deployment.
 */
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createPublicClient, http, type Hex } from "viem";
import { devKey, DevRole } from "@facilitator/devnet";
import { BullQueue } from "@facilitator/inference";
import { openRedis } from "@facilitator/redis";
import { spawnFacilitator, startProcessWorld, stopAll, type FacilitatorProcess, type ProcessWorld } from "../test/helpers/processes.ts";
import { relayBatches } from "../test/helpers/relay.ts";
import { cpuMsOf, machineBusyMs } from "./lib/cpu.ts";
import { keepAliveAgent, postJson } from "./lib/load.ts";
import { timelineSvg, type Sample } from "./lib/timeline.ts";

const option = (name: string, fallback: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const opts = {
  deployments: option("--deployments", "single,cluster").split(",") as ("single" | "cluster")[],
  seconds: Number(option("--seconds", "60")),
  batch: Number(option("--batch", "4096")),
  batchTimeoutMs: Number(option("--batch-timeout-ms", "2000")),
  inFlight: Number(option("--in-flight", "3")),
  connections: Number(option("--connections", "16")),
  perRequest: Number(option("--per-request", "100")),
  rate: Number(option("--rate", "0")),
  drainSeconds: Number(option("--drain-seconds", "300")),
  /** A directory for V8 CPU profiles of the API and worker processes (bench/tools/profile-summary.ts reads them). */
  profileDir: option("--profile", ""),
};
const KEY = devKey(DevRole.facilitator);
const stamp = new Date().toISOString().replace(/[:.]/g, "-");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `n` records never sent before, as one door request's body. */
// Fresh hashes cheaply: a random prefix for this run and a counter (the load generator shares the cores
// with what it measures, so it spends as little of them as it can).
const RUN_PREFIX = { input: randomBytes(24).toString("hex"), output: randomBytes(24).toString("hex") };
let recordCounter = 0;
function body(n: number): Buffer {
  const records: string[] = [];
  for (let i = 0; i < n; i++) {
    const count = (recordCounter++).toString(16).padStart(16, "0");
    records.push(`{"inputHash":"0x${RUN_PREFIX.input}${count}","outputHash":"0x${RUN_PREFIX.output}${count}"}`);
  }
  return Buffer.from(`{"records":[${records.join(",")}]}`);
}

/** Posts fresh records to the doors until `until`, `connections` requests in flight, at most `rate` records/s. */
interface Counts {
  accepted: number;
  refused: number;
  errors: number;
  /** Each refusal's status and message, with how often it came. */
  why: Record<string, number>;
}

async function load(doors: FacilitatorProcess[], apiKey: string, until: number, counts: Counts) {
  const agent = keepAliveAgent(opts.connections);
  const urls = doors.map((d) => new URL(`${d.url}/inference/settlements`));
  const started = performance.now();
  let sent = 0;
  const connection = async (c: number) => {
    while (performance.now() < until) {
      if (opts.rate > 0) {
        const due = started + ((sent * opts.perRequest) / opts.rate) * 1000;
        sent++;
        if (due > performance.now()) await sleep(due - performance.now());
        if (performance.now() >= until) return;
      }
      const answer = await postJson(agent, urls[c % urls.length]!, body(opts.perRequest), { authorization: `Bearer ${apiKey}` }).catch(() => undefined);
      if (!answer) counts.errors++;
      else if (answer.status === 202) counts.accepted += (answer.body as { accepted: number }).accepted;
      else {
        counts.refused++;
        const why = `${answer.status} ${String((answer.body as { message?: string })?.message ?? "").slice(0, 160)}`;
        counts.why[why] = (counts.why[why] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: opts.connections }, (_, c) => connection(c)));
  agent.destroy();
}

/** Microseconds Redis spent so far in each command, summed over the given servers (INFO commandstats). */
async function redisCommandUsec(urls: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const url of urls) {
    const client = openRedis(url, { maxRetriesPerRequest: 1 });
    try {
      const info = await client.info("commandstats");
      for (const m of info.matchAll(/^cmdstat_([^:]+):calls=\d+,usec=(\d+)/gm)) out.set(m[1]!, (out.get(m[1]!) ?? 0) + Number(m[2]));
    } finally {
      client.disconnect();
    }
  }
  return out;
}

/** CPU ms so far of each part of the deployment. */
function cpu(apis: FacilitatorProcess[], workers: FacilitatorProcess[]) {
  const group = (ps: FacilitatorProcess[]) => cpuMsOf((p) => ps.some((f) => f.pid === p.pgrp));
  return {
    api: group(apis),
    worker: group(workers),
    // redis-server and the children it forks (an append-only file rewrite runs in one).
    redis: cpuMsOf((p) => /^redis-(server|aof-rewrite|rdb)/.test(p.cmdline), { reapedChildren: true }),
    anvil: cpuMsOf((p) => p.cmdline.includes("anvil")),
    // This process: the load generator, the sampler and the local Walrus service (it runs in-process).
    bench: (process.cpuUsage().user + process.cpuUsage().system) / 1000,
    machine: machineBusyMs(),
  };
}

async function run(deployment: "single" | "cluster") {
  const cluster = deployment === "cluster";
  // A node timeout as production would set it: at 1 s (the tests' quick failovers) a starved CPU fails over by itself.
  const pw: ProcessWorld = await startProcessWorld({ cluster, clusterNodeTimeoutMs: 5_000 });
  const count = cluster ? 2 : 1;
  const env = (extra: Omit<Parameters<ProcessWorld["env"]>[0], "evmKeys">, inFlight?: number) => ({
    ...pw.env({ evmKeys: [KEY], ...extra }),
    ...(inFlight ? { SETTLEMENT_BATCHES_IN_FLIGHT: String(inFlight) } : {}),
  });
  const nodeArgs = opts.profileDir ? ["--cpu-prof", `--cpu-prof-dir=${opts.profileDir}`] : [];
  const apis: FacilitatorProcess[] = [];
  const workers: FacilitatorProcess[] = [];
  const queue = new BullQueue({ connection: pw.redis.url, partitions: pw.queue.partitions });
  try {
    for (let i = 0; i < count; i++) {
      // The door logs a line per request at info; a worker a line per batch (and says it runs at info).
      apis.push(await spawnFacilitator({ name: `api-${i}`, role: "api", env: env({ runWorker: false, logLevel: "warn" }), nodeArgs }));
      workers.push(await spawnFacilitator({ name: `worker-${i}`, role: "worker", env: env({ batchSize: opts.batch, batchTimeoutMs: opts.batchTimeoutMs }, opts.inFlight), nodeArgs }));
    }
    const fromBlock = (await createPublicClient({ transport: http(pw.chain.rpcUrl) }).getBlockNumber()) + 1n;
    const counts: Counts = { accepted: 0, refused: 0, errors: 0, why: {} };
    const samples: Sample[] = [];
    const t0 = performance.now();
    const sample = async () => {
      const s = await queue.stats().catch(() => undefined);
      if (!s) return;
      const now = Date.now();
      const t = Math.round((performance.now() - t0) / 100) / 10;
      if (samples.at(-1)?.t === t) samples.pop(); // the end-of-load sample can land on the interval's
      samples.push({
        t,
        accepted: counts.accepted,
        anchored: s.records.anchored,
        queued: s.records.queued,
        batched: s.records.batched,
        oldestAgeS: s.oldestQueuedAt ? Math.max(0, (now - s.oldestQueuedAt) / 1000) : 0,
      });
    };
    // The primaries only: a replica counts each replicated write again.
    const redisUrls = pw.cluster ? (await pw.cluster.shards()).map((s) => `redis://127.0.0.1:${s.primary}`) : [pw.redis.url];
    const usec0 = await redisCommandUsec(redisUrls);
    const cpu0 = cpu(apis, workers);
    const sampler = setInterval(() => void sample(), 1000);
    await load(apis, pw.inferenceApiKey, t0 + opts.seconds * 1000, counts);
    const loadS = (performance.now() - t0) / 1000;
    const cpu1 = cpu(apis, workers);
    const usec1 = await redisCommandUsec(redisUrls);
    await sample();
    const atEndOfLoad = samples.at(-1)!;
    const drainUntil = performance.now() + opts.drainSeconds * 1000;
    while (performance.now() < drainUntil) {
      const last = samples.at(-1)!;
      // Until nothing waits: records of a call answered with an error may have been stored, and are anchored too.
      if (last.anchored >= counts.accepted && last.queued + last.batched === 0) break;
      await sleep(500);
    }
    clearInterval(sampler);
    await sample();
    const last = samples.at(-1)!;
    const drainedS = last.anchored >= counts.accepted && last.queued + last.batched === 0 ? last.t - loadS : undefined;

    const batches = (await relayBatches(pw.chain.rpcUrl, pw.relay.address, fromBlock)).filter((b) => b.batchSize > 0);
    const client = createPublicClient({ transport: http(pw.chain.rpcUrl) });
    const gas = await Promise.all(batches.map(async (b) => ({ size: b.batchSize, gasUsed: Number((await client.getTransactionReceipt({ hash: b.transactionHash as Hex })).gasUsed) })));
    const full = gas.filter((g) => g.size === opts.batch);
    const cpuDuringLoad = Object.fromEntries(Object.entries(cpu1).map(([k, v]) => [k, Math.round((v - cpu0[k as keyof typeof cpu0]) / loadS / 10) / 100])) as Record<keyof typeof cpu0, number>;
    const during = samples.filter((s) => s.t <= loadS);
    const result = {
      deployment,
      processes: { apis: count, workers: count },
      loadSeconds: Math.round(loadS * 10) / 10,
      acceptedPerS: Math.round(counts.accepted / loadS),
      anchoredDuringLoadPerS: Math.round(atEndOfLoad.anchored / loadS),
      doorToAnchoredPerS: drainedS !== undefined ? Math.round(counts.accepted / (loadS + drainedS)) : undefined,
      accepted: counts.accepted,
      refused: counts.refused,
      refusedWhy: counts.why,
      transportErrors: counts.errors,
      anchoredAtEndOfLoad: atEndOfLoad.anchored,
      waitingAtEndOfLoad: atEndOfLoad.queued + atEndOfLoad.batched,
      drainSeconds: drainedS !== undefined ? Math.round(drainedS * 10) / 10 : undefined,
      oldestAgeS: { atEndOfLoad: round1(atEndOfLoad.oldestAgeS), maxDuringLoad: round1(Math.max(0, ...during.map((s) => s.oldestAgeS))) },
      batches: batches.length,
      // The multiprocess guarantees, read off the chain: the leaves of every batch emitted equal the records
      // the queue holds as anchored (each record marked anchored once, so none is in two batches), and
      // those are at least the records acknowledged (a call answered with an error may have stored its records too).
      recordsOnChain: batches.reduce((sum, b) => sum + b.batchSize, 0),
      recordsAnchoredInQueue: last.anchored,
      fullBatches: full.length,
      gasPerInferenceAtFullBatch: full.length ? round1(full.reduce((s, g) => s + g.gasUsed, 0) / full.length / opts.batch) : undefined,
      coresUsedDuringLoad: cpuDuringLoad,
      // Where Redis spent its time, per record accepted (commands, scripts as evalsha; not the AOF's fsyncs).
      redisUsPerRecord: Object.fromEntries(
        [...usec1]
          .map(([cmd, us]) => [cmd, round1((us - (usec0.get(cmd) ?? 0)) / Math.max(1, counts.accepted))] as const)
          .filter(([, us]) => us >= 0.1)
          .sort((a, b) => b[1] - a[1]),
      ),
      samples,
    };
    const svg = join(import.meta.dirname, "results", `sustained-${deployment}-${stamp}.svg`);
    writeFileSync(svg, timelineSvg(`${deployment === "cluster" ? "Redis Cluster, 2 API + 2 workers" : "one Redis, 1 API + 1 worker"}: batch ${opts.batch}, ${opts.inFlight} in flight per worker`, samples, loadS));
    console.log(JSON.stringify({ ...result, samples: samples.length, svg }));
    return result;
  } finally {
    await queue.close();
    await stopAll([...apis, ...workers]);
    await pw.stop();
  }
}

const round1 = (v: number) => Math.round(v * 10) / 10;
const results = [];
for (const d of opts.deployments) results.push(await run(d));
const out = join(import.meta.dirname, "results", `sustained-${stamp}.json`);
writeFileSync(out, JSON.stringify({ node: process.version, options: opts, results }, null, 2));
console.log(`wrote ${out}`);
