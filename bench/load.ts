/**
 * A bounded load run on loopback (not a CI test): the facilitator as operators run it
 * (`packages/server/src/cli.ts` in production mode, its own process) on a local anvil chain, driven by
 * autocannon from this process, for a fixed time per endpoint:
 *   /verify                  valid pre-signed v2 EIP-3009 payments, rotating
 *   /settle                  distinct pre-signed payments, each used once
 *   /inference/settlements   batches of fresh records (default 100 per request)
 * once with the embedded ledger and queue, once with Redis. Reports throughput, p50/p99 latency, error
 * rate (transport errors, non-2xx, or an answer that is not a success), the facilitator's peak RSS and
 * CPU per request, and for the inference door the records accepted per second. Saves
 * bench/results/load-<time>.json and prints a markdown table.
 *
 *   pnpm exec tsx bench/load.ts [--seconds 60] [--connections 32] [--configs embedded,redis]
 *                               [--endpoints verify,settle,inference] [--batch 100] [--settle-cap 300]
 *
 * `--settle-cap` is the settle rate (per second) payments are pre-signed for: seconds x cap of them.
 * If the facilitator is faster, the phase ends early when they run out, and the result says so.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { cpus, loadavg, totalmem, tmpdir } from "node:os";
import { join } from "node:path";
import { privateKeyToAccount } from "viem/accounts";
import { freePort, repoRoot, startEvmWorld, startRedis, type EvmWorld, type EvmWorldNetwork, type RedisServer } from "@facilitator/devnet";
import { signEip3009Payload } from "@facilitator/evm";

// ---------------------------------------------------------------- options

const CONFIGS = ["embedded", "redis"] as const;
const ENDPOINTS = ["verify", "settle", "inference"] as const;
type ConfigName = (typeof CONFIGS)[number];
type Endpoint = (typeof ENDPOINTS)[number];

interface Options {
  seconds: number;
  connections: number;
  configs: ConfigName[];
  endpoints: Endpoint[];
  batch: number;
  settleCap: number;
}

function parseOptions(argv: string[]): Options {
  const opts: Options = { seconds: 60, connections: 32, configs: [...CONFIGS], endpoints: [...ENDPOINTS], batch: 100, settleCap: 300 };
  for (let i = 0; i < argv.length; i++) {
    const [flag, value] = [argv[i], argv[i + 1]];
    const int = () => {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} needs a positive integer, got ${value}`);
      i++;
      return n;
    };
    const list = <T extends string>(allowed: readonly T[]): T[] => {
      const items = (value ?? "").split(",").filter(Boolean);
      const wrong = items.filter((x) => !allowed.includes(x as T));
      if (!items.length || wrong.length) throw new Error(`${flag} takes a list of ${allowed.join(", ")}`);
      i++;
      return items as T[];
    };
    if (flag === "--seconds") opts.seconds = int();
    else if (flag === "--connections") opts.connections = int();
    else if (flag === "--batch") opts.batch = int();
    else if (flag === "--settle-cap") opts.settleCap = int();
    else if (flag === "--configs") opts.configs = list(CONFIGS);
    else if (flag === "--endpoints") opts.endpoints = list(ENDPOINTS);
    else throw new Error(`unknown option ${flag}; see the comment at the top of bench/load.ts`);
  }
  return opts;
}

// ---------------------------------------------------------------- autocannon (no type package: the part we use)

interface Histogram {
  average: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}
interface AutocannonResult {
  latency: Histogram;
  requests: Histogram & { total: number; sent: number };
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
}
interface AutocannonRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer | string;
}
interface AutocannonInstance {
  stop(): void;
}
type Autocannon = (
  opts: Record<string, unknown>,
  done: (err: Error | null, result: AutocannonResult) => void,
) => AutocannonInstance;
const autocannon = createRequire(import.meta.url)("autocannon") as Autocannon;

// ---------------------------------------------------------------- the facilitator process

const INFERENCE_KEY = "bench-load-inference-key";

interface FacilitatorProcess {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/** Starts cli.ts in production mode (its own node process, so RSS and CPU are the facilitator's alone). */
async function startFacilitatorProcess(world: EvmWorld, redisUrl: string | undefined): Promise<FacilitatorProcess> {
  const n = world.networks["base-sepolia"]!;
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), "load-facilitator-"));
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? tmpdir(),
    HOST: "127.0.0.1",
    PORT: String(port),
    LOG_LEVEL: "warn", // one info line per request would measure the log pipe, not the facilitator
    NETWORKS: "base-sepolia",
    NETWORK_OVERRIDES: JSON.stringify([{ name: "base-sepolia", rpcUrl: n.rpcUrl, asset: n.asset }]),
    EVM_PRIVATE_KEYS: world.facilitatorKeys.join(","),
    INFERENCE_API_KEYS: INFERENCE_KEY,
    DATA_DIR: dataDir,
    ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
  };
  // node --import tsx, not the tsx wrapper: one process, whose pid is the facilitator's.
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", join(repoRoot, "packages", "server", "src", "cli.ts")], {
    cwd: repoRoot,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (d) => (output += d));
  child.stderr!.on("data", (d) => (output += d));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the facilitator exited (${child.exitCode}):\n${output}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`the facilitator did not answer /health within 60 s:\n${output}`);
    }
    const up = await fetch(`${url}/health`).then((r) => r.ok, () => false);
    if (up) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    pid: child.pid!,
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        const exited = once(child, "exit");
        const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Peak resident memory and CPU time of one process, sampled from /proc while a phase runs. */
class ProcessSampler {
  private peakKb = 0;
  private timer?: NodeJS.Timeout;
  private cpuStart = 0;

  constructor(private readonly pid: number) {}

  start(): void {
    this.peakKb = this.rssKb();
    this.cpuStart = this.cpuMs();
    this.timer = setInterval(() => (this.peakKb = Math.max(this.peakKb, this.rssKb())), 100);
  }

  stop(): { peakRssMb: number; cpuMs: number } {
    clearInterval(this.timer);
    this.peakKb = Math.max(this.peakKb, this.rssKb());
    return { peakRssMb: round(this.peakKb / 1024), cpuMs: this.cpuMs() - this.cpuStart };
  }

  rssKb(): number {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.pid}/status`, "utf8"));
    return m ? Number(m[1]) : 0;
  }

  /** utime + stime of the process (its threads included), in ms. */
  private cpuMs(): number {
    const stat = readFileSync(`/proc/${this.pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]); // fields 14 and 15 of proc(5), counted after the name
    return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
  }
}

// ---------------------------------------------------------------- payments and records

function requirements(n: EvmWorldNetwork) {
  return { scheme: "exact", network: n.caip2, amount: "1000", asset: n.asset.address, payTo: n.payTo, maxTimeoutSeconds: 60, extra: { name: n.asset.name, version: n.asset.version } };
}

/** `count` distinct v2 payment bodies (fresh random EIP-3009 nonces), serialised once. */
async function signPayments(n: EvmWorldNetwork, count: number): Promise<Buffer[]> {
  const payer = privateKeyToAccount(n.payer.privateKey);
  const domain = { name: n.asset.name, version: n.asset.version, chainId: n.chainId, verifyingContract: n.asset.address };
  const req = requirements(n);
  const validBefore = BigInt(Math.floor(Date.now() / 1000) + 3 * 3600); // outlives every phase
  const bodies: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const payload = await signEip3009Payload(payer, { domain, to: n.payTo, value: 1000n, validBefore });
    bodies.push(Buffer.from(JSON.stringify({ x402Version: 2, paymentPayload: { x402Version: 2, resource: { url: "http://127.0.0.1/load" }, accepted: req, payload }, paymentRequirements: req })));
  }
  return bodies;
}

/** One inference door request: `size` records with fresh random hashes, so every one is new. */
function recordBatch(size: number): Buffer {
  const bytes = randomBytes(64 * size).toString("hex");
  const records = Array.from({ length: size }, (_, i) => ({ inputHash: `0x${bytes.slice(i * 128, i * 128 + 64)}`, outputHash: `0x${bytes.slice(i * 128 + 64, i * 128 + 128)}` }));
  return Buffer.from(JSON.stringify({ records }));
}

// ---------------------------------------------------------------- one phase

interface PhaseSpec {
  endpoint: Endpoint;
  path: string;
  headers: Record<string, string>;
  /** The next body, or undefined when there is none left (the phase then ends). */
  nextBody(): Buffer | undefined;
  /** Whether an answer is the success this endpoint promises; `units` counts records accepted. */
  judge(status: number, body: string): { ok: boolean; units?: number };
}

export interface PhaseResult {
  config: ConfigName;
  endpoint: Endpoint;
  connections: number;
  seconds: number;
  requests: number;
  throughputPerS: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
  errors: { transport: number; timeouts: number; refused: number; rate: number; examples: string[] };
  recordsAcceptedPerS?: number;
  recordsPerRequest?: number;
  ranOutOfPaymentsAtS?: number;
  facilitator: { peakRssMb: number; rssBeforeMb: number; cpuMsPerRequest: number; cpuUtilisation: number };
}

async function runPhase(config: ConfigName, fac: FacilitatorProcess, spec: PhaseSpec, opts: Options): Promise<PhaseResult> {
  const sampler = new ProcessSampler(fac.pid);
  const rssBeforeMb = round(sampler.rssKb() / 1024);
  let answered = 0;
  let refused = 0;
  let units = 0;
  let ranOutAt: number | undefined;
  const examples = new Set<string>();
  let instance: AutocannonInstance | undefined;
  const started = Date.now();
  sampler.start();
  const result = await new Promise<AutocannonResult>((resolve, reject) => {
    instance = autocannon(
      {
        url: fac.url,
        connections: opts.connections,
        duration: opts.seconds,
        timeout: 60,
        requests: [
          {
            method: "POST",
            path: spec.path,
            setupRequest(req: AutocannonRequest) {
              const body = spec.nextBody();
              if (!body) {
                // Out of pre-signed payments: stop, and send a harmless request meanwhile.
                ranOutAt ??= (Date.now() - started) / 1000;
                setImmediate(() => instance?.stop());
                return { ...req, method: "GET", path: "/health", body: undefined, headers: {} };
              }
              return { ...req, headers: { ...spec.headers, "content-type": "application/json" }, body };
            },
            onResponse(status: number, body: string) {
              if (status === 200 && body === '{"status":"ok"}') return; // the filler above
              answered++;
              const verdict = spec.judge(status, body);
              units += verdict.units ?? 0;
              if (!verdict.ok) {
                refused++;
                if (examples.size < 5) examples.add(`${status} ${body.slice(0, 160)}`);
              }
            },
          },
        ],
      },
      (err, res) => (err ? reject(err) : resolve(res)),
    );
  });
  const elapsedS = ranOutAt ?? (Date.now() - started) / 1000;
  const { peakRssMb, cpuMs } = sampler.stop();
  const failed = refused + result.errors + result.timeouts;
  return {
    config,
    endpoint: spec.endpoint,
    connections: opts.connections,
    seconds: round(elapsedS),
    requests: answered,
    throughputPerS: round(answered / elapsedS),
    latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max, mean: round(result.latency.average) },
    errors: { transport: result.errors, timeouts: result.timeouts, refused, rate: round(failed / Math.max(1, answered + result.errors + result.timeouts), 4), examples: [...examples] },
    ...(spec.endpoint === "inference" ? { recordsAcceptedPerS: round(units / elapsedS), recordsPerRequest: opts.batch } : {}),
    ...(ranOutAt !== undefined ? { ranOutOfPaymentsAtS: round(ranOutAt) } : {}),
    facilitator: { peakRssMb, rssBeforeMb, cpuMsPerRequest: round(cpuMs / Math.max(1, answered), 3), cpuUtilisation: round(cpuMs / 1000 / elapsedS, 2) },
  };
}

const parse = (body: string): Record<string, unknown> | undefined => {
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
};

function phaseSpec(endpoint: Endpoint, verifyBodies: Buffer[], settleBodies: Buffer[], opts: Options): PhaseSpec {
  if (endpoint === "verify") {
    let i = 0;
    return {
      endpoint,
      path: "/verify",
      headers: {},
      nextBody: () => verifyBodies[i++ % verifyBodies.length],
      judge: (status, body) => ({ ok: status === 200 && parse(body)?.isValid === true }),
    };
  }
  if (endpoint === "settle") {
    let i = 0;
    return {
      endpoint,
      path: "/settle",
      headers: {},
      nextBody: () => settleBodies[i++],
      judge: (status, body) => ({ ok: status === 200 && parse(body)?.success === true }),
    };
  }
  return {
    endpoint,
    path: "/inference/settlements",
    headers: { authorization: `Bearer ${INFERENCE_KEY}` },
    nextBody: () => recordBatch(opts.batch),
    judge: (status, body) => {
      const accepted = Number(parse(body)?.accepted ?? 0);
      return { ok: status === 202 && accepted === opts.batch, units: accepted };
    },
  };
}

// ---------------------------------------------------------------- the run

async function runConfig(config: ConfigName, opts: Options): Promise<PhaseResult[]> {
  const world = await startEvmWorld({ networks: ["base-sepolia"], tokensPerPayer: 10_000_000n });
  let redis: RedisServer | undefined;
  let fac: FacilitatorProcess | undefined;
  try {
    // As production: append-only, every acknowledged write fsync'd.
    if (config === "redis") redis = await startRedis({ appendOnly: true });
    const n = world.networks["base-sepolia"]!;
    log(`${config}: signing payments`);
    const verifyBodies = opts.endpoints.includes("verify") ? await signPayments(n, 256) : [];
    const settleBodies = opts.endpoints.includes("settle") ? await signPayments(n, opts.seconds * opts.settleCap) : [];
    fac = await startFacilitatorProcess(world, redis?.url);
    const results: PhaseResult[] = [];
    for (const endpoint of opts.endpoints) {
      log(`${config}: ${endpoint} for ${opts.seconds} s at ${opts.connections} connections`);
      const r = await runPhase(config, fac, phaseSpec(endpoint, verifyBodies, settleBodies, opts), opts);
      log(`  ${r.throughputPerS}/s, p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, errors ${(r.errors.rate * 100).toFixed(2)}%, peak RSS ${r.facilitator.peakRssMb} MB`);
      results.push(r);
      await new Promise((r) => setTimeout(r, 1_000)); // let the last answers and GC settle between phases
    }
    return results;
  } finally {
    await fac?.stop();
    await redis?.stop();
    await world.stop();
  }
}

function markdownTable(results: PhaseResult[]): string {
  const rows = [
    "| config | endpoint | conns | req/s | records/s | p50 ms | p99 ms | errors | peak RSS MB | CPU ms/req |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const r of results) {
    const note = r.ranOutOfPaymentsAtS !== undefined ? ` (ran out of payments at ${r.ranOutOfPaymentsAtS} s)` : "";
    rows.push(
      `| ${r.config} | ${r.endpoint === "inference" ? `inference (${r.recordsPerRequest} records/req)` : r.endpoint}${note} | ${r.connections} | ${r.throughputPerS} | ${r.recordsAcceptedPerS ?? ""} | ${r.latencyMs.p50} | ${r.latencyMs.p99} | ${(r.errors.rate * 100).toFixed(2)}% | ${r.facilitator.peakRssMb} | ${r.facilitator.cpuMsPerRequest} |`,
    );
  }
  return rows.join("\n");
}

const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;
const log = (msg: string) => console.error(`[load] ${msg}`);

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const startedAt = new Date();
  const loadBefore = loadavg()[0]!;
  const results: PhaseResult[] = [];
  for (const config of opts.configs) results.push(...(await runConfig(config, opts)));
  const report = {
    startedAt: startedAt.toISOString(),
    command: `pnpm exec tsx bench/load.ts ${process.argv.slice(2).join(" ")}`.trim(),
    options: opts,
    machine: {
      nproc: cpus().length,
      cpuModel: cpus()[0]?.model,
      memoryGiB: round(totalmem() / 2 ** 30),
      node: process.version,
      os: `${process.platform} ${process.arch}`,
      // Other work on the machine shares its cores: a 1-minute load average above nproc means the numbers are low.
      loadAverage1m: { before: round(loadBefore, 2), after: round(loadavg()[0]!, 2) },
    },
    notes: [
      "Facilitator: packages/server/src/cli.ts in production mode (NETWORKS=base-sepolia on a local anvil with chain id 84532, two EVM signer keys, LOG_LEVEL=warn), its own process; load from autocannon in another.",
      "embedded = lmdb ledger and queue in DATA_DIR; redis = Redis ledger, BullMQ queue, Redis rate-limit store (limits off).",
      "errors = transport errors + timeouts + answers that are not the endpoint's success (isValid:true, success:true, 202 with every record accepted).",
      "Inference records are queued, not anchored (no relay configured): this measures the door and the durable enqueue.",
    ],
    results,
  };
  const dir = join(repoRoot, "bench", "results");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `load-${startedAt.toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, JSON.stringify(report, null, 2) + "\n");
  console.log(markdownTable(results));
  const load = report.machine.loadAverage1m;
  console.log(`\n${opts.seconds} s per endpoint, ${opts.connections} connections; ${report.machine.nproc} x ${report.machine.cpuModel}, node ${process.version}; 1-min load average ${load.before} before, ${load.after} after. Results: ${file}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
