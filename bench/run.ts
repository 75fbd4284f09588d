/**
 * `pnpm bench`: our facilitator against the reference facilitator assembled from the official x402
 * npm packages, on the same local chains with the same kind of payments, over HTTP with the same
 * client. Prints the tables, saves raw JSON under bench/results/ and writes BENCHMARKS.md.
 */
import { execFileSync, execSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem, type } from "node:os";
import { join, relative } from "node:path";
import { createSolanaRpc, type Address } from "@solana/kit";
import { createPublicClient, erc20Abi, http, type Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { anvilBinary, devKey, repoRoot, startEvmWorld, type EvmWorld } from "@facilitator/devnet";
import { startChild, type Child } from "./lib/child.ts";
import { machineBusyMs } from "./lib/cpu.ts";
import { keepAliveAgent, runLoad } from "./lib/load.ts";
import { evmPayments } from "./lib/evm-payments.ts";
import { writeBenchmarksMd } from "./lib/markdown.ts";
import { svmBodyFactory } from "./lib/payloads.ts";
import { EVM_METHODS, phaseResult, runRound, type ChainName, type EvmMethod, type FacilitatorName, type Operation, type PaymentMethod, type PhaseResult, type Round, type Target } from "./lib/phase.ts";
import { checkTargets, failureNotes, resultsSection, targetsTable, type Machine, type RawResults, type Settings } from "./lib/report.ts";
import type { SpanStat } from "./lib/spans.ts";
import type { OursSpec, ReferenceSpec, ServerInfo, SolanaNodeInfo, SolanaNodeSpec } from "./lib/spec.ts";

const benchDir = join(repoRoot, "bench");
const resultsDir = join(benchDir, "results");

/** The reference's EVM key: anvil dev account 5, funded with ETH by anvil, used by nothing else here. */
const REFERENCE_EVM_KEY_INDEX = 5;
/** The nonce-managed reference variant's key: anvil dev account 6. */
const REFERENCE_NM_EVM_KEY_INDEX = 6;
const EVM_AMOUNT = 1_000n; // 0.001 TestUSDC
const SVM_AMOUNT = 1_000n; // 0.001 of the 6-decimal mint
const POLLING_INTERVAL_MS = 50;

function settingsFromEnv(env: NodeJS.ProcessEnv): Settings {
  const int = (name: string, fallback: number) => {
    const v = env[name];
    if (v === undefined || v === "") return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got "${v}"`);
    return n;
  };
  const chains = (env.BENCH_CHAINS ?? "evm,svm").split(",").map((s) => s.trim()).filter(Boolean);
  for (const c of chains) if (c !== "evm" && c !== "svm") throw new Error(`BENCH_CHAINS: unknown chain "${c}" (evm, svm)`);
  const operations = (env.BENCH_OPERATIONS ?? "verify,settle").split(",").map((s) => s.trim()).filter(Boolean);
  for (const o of operations) if (o !== "verify" && o !== "settle") throw new Error(`BENCH_OPERATIONS: unknown operation "${o}" (verify, settle)`);
  const methods = (env.BENCH_METHODS ?? EVM_METHODS.join(",")).split(",").map((s) => s.trim()).filter(Boolean);
  for (const m of methods) if (!(EVM_METHODS as readonly string[]).includes(m)) throw new Error(`BENCH_METHODS: unknown method "${m}" (${EVM_METHODS.join(", ")})`);
  const concurrency = (env.BENCH_CONCURRENCY ?? "1,16,64").split(",").map((s) => Number(s.trim()));
  if (concurrency.some((c) => !Number.isInteger(c) || c < 1)) throw new Error(`BENCH_CONCURRENCY must list positive integers`);
  return {
    chains: chains as ChainName[],
    operations: operations as Operation[],
    concurrency,
    verifyRequests: int("BENCH_VERIFY_REQUESTS", 300),
    settleRequests: int("BENCH_SETTLE_REQUESTS", 200),
    rounds: int("BENCH_ROUNDS", 2),
    amount: { evm: EVM_AMOUNT.toString(), svm: SVM_AMOUNT.toString() },
    methods: methods as EvmMethod[],
    oursEvmKeys: int("BENCH_OURS_EVM_KEYS", 1),
    nonceManagedVariant: env.BENCH_REFERENCE_NONCE_MANAGER !== "0",
    pollingIntervalMs: POLLING_INTERVAL_MS,
  };
}

function machineInfo(): Machine {
  const pkgVersion = (name: string) => {
    try {
      return JSON.parse(readFileSync(join(repoRoot, "node_modules", name, "package.json"), "utf8")).version as string;
    } catch {
      return "?";
    }
  };
  const cpuModel = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? cpus()[0]?.model ?? "?";
  let anvil = "?";
  try {
    anvil = execFileSync(anvilBinary(), ["--version"], { encoding: "utf8" }).split("\n")[0]!.trim();
  } catch {
    // reported as unknown
  }
  return {
    nproc: Number(execSync("nproc", { encoding: "utf8" }).trim()),
    cpuModel,
    node: process.version,
    os: `${type()} ${readFileSync("/proc/sys/kernel/osrelease", "utf8").trim()}`,
    memoryGiB: totalmem() / 2 ** 30,
    versions: {
      "@x402/core, @x402/evm, @x402/svm": `${pkgVersion("@x402/core")}, ${pkgVersion("@x402/evm")}, ${pkgVersion("@x402/svm")}`,
      viem: pkgVersion("viem"),
      anvil,
    },
  };
}

function profileArgs(who: "ours" | "reference"): string[] {
  const wanted = process.env.BENCH_PROFILE ?? "";
  if (wanted !== who && wanted !== "both") return [];
  const dir = join(resultsDir, "profiles", who);
  mkdirSync(dir, { recursive: true });
  return ["--cpu-prof", `--cpu-prof-dir=${dir}`];
}

interface ChainSetup {
  chain: ChainName;
  method: PaymentMethod;
  amount: bigint;
  targets: { ours: Target; reference: Target };
  /** The nonce-managed reference variant: settle at the highest concurrency only. */
  variant?: Target;
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const settings = settingsFromEnv(process.env);
  const machine = machineInfo();
  mkdirSync(resultsDir, { recursive: true });
  const log = (s: string) => process.stdout.write(s + "\n");
  log(`bench: ${machine.nproc} CPUs (${machine.cpuModel}), Node ${machine.node}; chains ${settings.chains.join(", ")}, concurrency ${settings.concurrency.join(", ")}`);
  const background = await backgroundLoad(2_000);
  log(`bench: before starting, other work keeps ${background.toFixed(2)} of ${machine.nproc} cores busy`);

  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch((e) => log(`cleanup: ${(e as Error).message}`));
  };
  process.once("SIGINT", () => void stopAll().finally(() => process.exit(130)));

  try {
    // Whatever starts is stopped at the end, even when something else failed to start.
    const started = async <T extends { stop(): Promise<void> }>(p: Promise<T>): Promise<T> => {
      const thing = await p;
      stops.push(() => thing.stop());
      return thing;
    };
    const [world, solana] = await Promise.all([
      settings.chains.includes("evm") ? started(startEvmWorld({ networks: ["base-sepolia"] })) : undefined,
      settings.chains.includes("svm")
        ? started(startChild<SolanaNodeInfo>(join(benchDir, "servers/solana-node.ts"), { payerBalance: (10n ** 15n).toString(), feePayerCount: 2 } satisfies SolanaNodeSpec))
        : undefined,
    ]);
    const evm = world?.networks["base-sepolia"];
    const sol = solana?.info;

    const referenceKey = devKey(REFERENCE_EVM_KEY_INDEX);
    const oursSpec: OursSpec = {
      evm: evm && { rpcUrl: evm.rpcUrl, asset: { ...evm.asset, transferMethod: "eip3009" }, keys: oursEvmKeys(world!, settings.oursEvmKeys) },
      svm: sol && { rpcUrl: sol.rpcUrl, mint: sol.mint, keys: [sol.feePayers[0]!.secretKey] },
      pollingIntervalMs: POLLING_INTERVAL_MS,
    };
    const referenceSpec: ReferenceSpec = {
      evm: evm && {
        rpcUrl: evm.rpcUrl,
        asset: { ...evm.asset, transferMethod: "eip3009" },
        key: referenceKey,
        nonceManagedKey: settings.nonceManagedVariant ? devKey(REFERENCE_NM_EVM_KEY_INDEX) : undefined,
      },
      svm: sol && { rpcUrl: sol.rpcUrl, mint: sol.mint, key: sol.feePayers[1]!.secretKey },
      pollingIntervalMs: POLLING_INTERVAL_MS,
    };
    const [ours, reference] = await Promise.all([
      started(startChild<ServerInfo>(join(benchDir, "servers/ours.ts"), oursSpec, { execArgv: profileArgs("ours"), logFile: join(resultsDir, "ours.log") })),
      started(startChild<ServerInfo>(join(benchDir, "servers/reference.ts"), referenceSpec, { execArgv: profileArgs("reference"), logFile: join(resultsDir, "reference.log") })),
    ]);
    log(`ours at ${ours.info.url} (pid ${ours.info.pid}), reference at ${reference.info.url} (pid ${reference.info.pid})`);

    const setups: ChainSetup[] = [];
    if (evm) {
      const reader = createPublicClient({ transport: http(evm.rpcUrl) });
      const payments = await evmPayments(world!, evm, settings.methods!, EVM_AMOUNT);
      const anvilPid = world!.nodes["base-sepolia"]!.process.pid!;
      const address = (key: Hex) => privateKeyToAccount(key).address;
      // The account each facilitator settles `upto` from: what its /supported announces.
      const settler: Record<FacilitatorName, Hex> = {
        ours: address(oursSpec.evm!.keys[0]!),
        reference: address(referenceKey),
        "reference-nm": address(devKey(REFERENCE_NM_EVM_KEY_INDEX)),
      };
      const target = (method: EvmMethod, name: FacilitatorName, url: string, pid: number): Target => ({
        name,
        url,
        spans: spansOf(name === "ours" ? ours : reference),
        probes: [{ name: "facilitator", pid }, { name: "anvil", pid: anvilPid }, { name: "client", pid: process.pid }],
        async prepare(n, operation) {
          // A payee of its own for every round: its balance change is this round's and nothing else's.
          const payTo = privateKeyToAccount(generatePrivateKey()).address;
          const bodies = await payments.bodies(method, operation, n, payTo, settler[name]);
          return { bodies, payeeBalance: () => reader.readContract({ address: evm.asset.address, abi: erc20Abi, functionName: "balanceOf", args: [payTo] }) };
        },
      });
      for (const method of settings.methods!) {
        setups.push({
          chain: "evm",
          method,
          amount: EVM_AMOUNT,
          targets: { ours: target(method, "ours", ours.info.url, ours.info.pid), reference: target(method, "reference", reference.info.url, reference.info.pid) },
          variant: settings.nonceManagedVariant ? target(method, "reference-nm", `${reference.info.url}/nonce-managed`, reference.info.pid) : undefined,
        });
      }
    }
    if (sol) {
      const rpc = createSolanaRpc(sol.rpcUrl);
      const payeeBalance = async () => BigInt((await rpc.getTokenAccountBalance(sol.payToTokenAccount).send()).value.amount);
      const nodePid = solana!.process.pid!;
      const target = async (name: "ours" | "reference", url: string, pid: number, feePayer: Address): Promise<Target> => {
        const factory = await svmBodyFactory({ rpcUrl: sol.rpcUrl, mint: sol.mint, payerSecretKey: sol.payer.secretKey, payTo: sol.payTo, feePayer }, SVM_AMOUNT);
        // One payee for both (its token account exists); rounds run one at a time, so changes do not mix.
        const probes = [{ name: "facilitator", pid }, { name: "solana-node", pid: nodePid }, { name: "client", pid: process.pid }];
        const spans = spansOf(name === "ours" ? ours : reference);
        return { name, url, probes, spans, prepare: async (n) => ({ bodies: await factory(n), payeeBalance }) };
      };
      setups.push({
        chain: "svm",
        method: "exact",
        amount: SVM_AMOUNT,
        targets: {
          ours: await target("ours", ours.info.url, ours.info.pid, sol.feePayers[0]!.address),
          reference: await target("reference", reference.info.url, reference.info.pid, sol.feePayers[1]!.address),
        },
      });
    }

    const results: PhaseResult[] = [];
    for (const setup of setups) {
      for (const t of [setup.targets.ours, setup.targets.reference, ...(setup.variant ? [setup.variant] : [])]) {
        log(`${setup.chain} ${setup.method}: warming up ${t.name}`);
        await warmUp(t);
      }
      for (const op of settings.operations) {
        for (const c of settings.concurrency) {
          // Rounds alternate the facilitators (A B, then B A, ...), so a slow spell of a shared
          // machine falls on both rather than on whichever happened to run then.
          const n = op === "verify" ? settings.verifyRequests : settings.settleRequests;
          const withVariant = setup.variant && op === "settle" && c === Math.max(...settings.concurrency);
          const participants = [setup.targets.ours, setup.targets.reference, ...(withVariant ? [setup.variant!] : [])];
          const rounds = new Map<FacilitatorName, Round[]>(participants.map((t) => [t.name, []]));
          for (let r = 0; r < settings.rounds; r++) {
            for (const t of r % 2 === 0 ? participants : [...participants].reverse()) rounds.get(t.name)!.push(await runRound(op, t, c, n, setup.amount));
          }
          for (const [name, rs] of rounds) {
            const result = phaseResult({ chain: setup.chain, method: setup.method, operation: op, facilitator: name, concurrency: c }, rs, setup.amount);
            results.push(result);
            log(describe(result));
          }
        }
      }
    }

    const checks = checkTargets(results);
    const durationS = (Date.now() - startedAt.getTime()) / 1000;
    const stamp = startedAt.toISOString().replace(/[:.]/g, "-");
    const resultsFile = join(resultsDir, `${stamp}.json`);
    const env = benchEnv();
    const command = [...Object.entries(env).map(([k, v]) => `${k}=${v}`), "pnpm bench"].join(" ");
    const raw: RawResults = { startedAt: startedAt.toISOString(), durationS, command, env, background, machine, settings, results, checks };
    writeFileSync(resultsFile, JSON.stringify(raw, null, 2) + "\n");
    writeFileSync(join(resultsDir, "latest.json"), JSON.stringify(raw, null, 2) + "\n");

    log("\n" + resultsSection(results));
    const failures = failureNotes(results);
    if (failures.length) log("Answers that were not valid / not successful:\n" + failures.join("\n") + "\n");
    log(targetsTable(checks));
    log(`\nraw results: ${relative(repoRoot, resultsFile)}; took ${durationS.toFixed(0)} s`);

    if (process.env.BENCH_MARKDOWN !== "0") {
      writeBenchmarksMd(raw, relative(repoRoot, resultsFile));
      log("wrote BENCHMARKS.md");
    }
  } finally {
    await stopAll();
  }
}

/** Cores the machine keeps busy over `ms` while this run does nothing: other work on a shared machine. */
async function backgroundLoad(ms: number): Promise<number> {
  const before = machineBusyMs();
  await new Promise((r) => setTimeout(r, ms));
  return Math.round(((machineBusyMs() - before) / ms) * 100) / 100;
}

/** The child's timing spans (bench/lib/spans.ts), when BENCH_SPANS=1. */
function spansOf(child: Child<ServerInfo>): Target["spans"] {
  if (process.env.BENCH_SPANS !== "1") return undefined;
  return async () => (await child.ask<{ spans: Record<string, SpanStat> }>("spans")).spans;
}

/** Our EVM keys: the world's facilitator keys (dev accounts 1, 2), then 7..9 (funded; 5 and 6 are the reference's). */
function oursEvmKeys(world: EvmWorld, count: number): Hex[] {
  const candidates = [...world.facilitatorKeys, devKey(7), devKey(8), devKey(9)];
  if (count > candidates.length) throw new Error(`BENCH_OURS_EVM_KEYS can be at most ${candidates.length}`);
  return candidates.slice(0, count);
}

/** A few untimed verifies and settles: JIT, caches, nonce managers, connections. */
async function warmUp(t: Target): Promise<void> {
  const agent = keepAliveAgent(8);
  const verify = await t.prepare(40, "verify");
  await runLoad(`${t.url}/verify`, verify.bodies, 8, agent);
  const settle = await t.prepare(16, "settle");
  await runLoad(`${t.url}/settle`, settle.bodies, 4, agent);
  agent.destroy();
}

function describe(r: PhaseResult): string {
  const head = `${r.chain} ${(r.method ?? "").padEnd(15)} ${r.operation.padEnd(6)} c=${String(r.concurrency).padStart(2)} ${r.facilitator.padEnd(12)}`;
  const cores = Object.entries(r.cores).map(([k, v]) => `${k} ${v}`).join(" ");
  const lat = `p50 ${r.latencyMs.p50.toFixed(1)} ms, p99 ${r.latencyMs.p99.toFixed(1)} ms; cores: ${cores}`;
  if (r.settle) {
    return `${head} ${r.throughput.toFixed(1)} answers/s, ${r.settle.successfulPerSecond.toFixed(1)} successful/s (${r.settle.successful}/${r.requests}), ${lat}`;
  }
  return `${head} ${r.throughput.toFixed(1)} req/s (${r.positive}/${r.requests} valid), ${lat}`;
}

function benchEnv(): Record<string, string> {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith("BENCH_")) as [string, string][]);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
