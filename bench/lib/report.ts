/** Tables, target checks and BENCHMARKS.md from the phase results. */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "@facilitator/devnet";
import { ratio } from "./stats.ts";
import type { ChainName, Operation, PhaseResult } from "./phase.ts";

export interface Machine {
  nproc: number;
  cpuModel: string;
  node: string;
  os: string;
  memoryGiB: number;
  versions: Record<string, string>;
}

export interface Settings {
  chains: ChainName[];
  operations: Operation[];
  concurrency: number[];
  /** Requests per facilitator per round. */
  verifyRequests: number;
  settleRequests: number;
  rounds: number;
  amount: { evm: string; svm: string };
  oursEvmKeys: number;
  /** Also settle through the reference with viem's nonce manager (EVM, highest concurrency). */
  nonceManagedVariant: boolean;
  pollingIntervalMs: number;
}

/** What a run saves as JSON under bench/results/. */
export interface RawResults {
  startedAt: string;
  durationS: number;
  command: string;
  env: Record<string, string>;
  /** Cores the rest of the machine kept busy just before the run (a shared machine's other work). */
  background: number;
  machine: Machine;
  settings: Settings;
  results: PhaseResult[];
  checks: TargetCheck[];
}

/** BENCHMARKS.md from a run's results and the hand-written bench/analysis.md. */
export function writeBenchmarksMd(raw: RawResults, resultsFile: string): void {
  const analysisFile = join(repoRoot, "bench", "analysis.md");
  const analysis = existsSync(analysisFile) ? readFileSync(analysisFile, "utf8") : "(bench/analysis.md is missing)";
  writeFileSync(join(repoRoot, "BENCHMARKS.md"), markdown({ ...raw, resultsFile, analysis }));
}

export interface TargetCheck {
  chain: ChainName;
  name: string;
  met: boolean;
  detail: string;
}

export const CHAIN_TITLES: Record<ChainName, string> = {
  evm: "EVM: base-sepolia (chain id 84532) on a local anvil, automine, TestUSDC (EIP-3009)",
  svm: "Solana: solana-devnet on the local litesvm JSON-RPC node, SPL token (TransferChecked)",
};

const fmt = (n: number | undefined, digits = 0) => (n === undefined || !Number.isFinite(n) ? "n/a" : n.toFixed(digits));
const times = (r: number | undefined) => (r === undefined ? "∞ (reference: 0)" : `${r.toFixed(2)}×`);

function pair(results: readonly PhaseResult[], chain: ChainName, op: Operation, c: number) {
  const find = (f: string) => results.find((r) => r.chain === chain && r.operation === op && r.concurrency === c && r.facilitator === f);
  return { ours: find("ours"), ref: find("reference") };
}

function levels(results: readonly PhaseResult[], chain: ChainName, op: Operation): number[] {
  return [...new Set(results.filter((r) => r.chain === chain && r.operation === op).map((r) => r.concurrency))].sort((a, b) => a - b);
}

export function verifyTable(results: readonly PhaseResult[], chain: ChainName): string {
  const rows = [
    "| concurrency | ours req/s | reference req/s | ours / ref | ours p50 / p99 ms | reference p50 / p99 ms | ours valid | reference valid |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const c of levels(results, chain, "verify")) {
    const { ours, ref } = pair(results, chain, "verify", c);
    if (!ours || !ref) continue;
    rows.push(
      `| ${c} | ${fmt(ours.throughput)} | ${fmt(ref.throughput)} | ${times(ratio(ours.throughput, ref.throughput))} | ` +
        `${fmt(ours.latencyMs.p50, 1)} / ${fmt(ours.latencyMs.p99, 1)} | ${fmt(ref.latencyMs.p50, 1)} / ${fmt(ref.latencyMs.p99, 1)} | ` +
        `${ours.positive}/${ours.requests} | ${ref.positive}/${ref.requests} |`,
    );
  }
  return rows.join("\n");
}

export function settleTable(results: readonly PhaseResult[], chain: ChainName): string {
  const rows = [
    "| concurrency | ours successful/s | reference successful/s | ours / ref | ours answers/s | reference answers/s | ours p50 / p99 ms | reference p50 / p99 ms | ours successful | reference successful |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const c of levels(results, chain, "settle")) {
    const { ours, ref } = pair(results, chain, "settle", c);
    if (!ours?.settle || !ref?.settle) continue;
    rows.push(
      `| ${c} | ${fmt(ours.settle.successfulPerSecond, 1)} | ${fmt(ref.settle.successfulPerSecond, 1)} | ` +
        `${times(ratio(ours.settle.successfulPerSecond, ref.settle.successfulPerSecond))} | ${fmt(ours.throughput, 1)} | ${fmt(ref.throughput, 1)} | ` +
        `${fmt(ours.latencyMs.p50, 1)} / ${fmt(ours.latencyMs.p99, 1)} | ${fmt(ref.latencyMs.p50, 1)} / ${fmt(ref.latencyMs.p99, 1)} | ` +
        `${settledCell(ours)} | ${settledCell(ref)} |`,
    );
  }
  return rows.join("\n");
}

/** Facilitator CPU per request: less sensitive than throughput to other work on a shared machine. */
export function cpuTable(results: readonly PhaseResult[], chain: ChainName): string {
  const rows = ["| operation | concurrency | ours CPU ms/request | reference CPU ms/request | ours / ref |", "|---|---:|---:|---:|---:|"];
  for (const op of ["verify", "settle"] as Operation[]) {
    for (const c of levels(results, chain, op)) {
      const { ours, ref } = pair(results, chain, op, c);
      const a = ours?.cpuMsPerRequest.facilitator;
      const b = ref?.cpuMsPerRequest.facilitator;
      if (a === undefined || b === undefined) continue;
      rows.push(`| ${op} | ${c} | ${fmt(a, 2)} | ${fmt(b, 2)} | ${fmt(a / b, 2)} |`);
    }
  }
  return rows.join("\n");
}

/** Settle through the reference with viem's nonce manager, beside ours at the same level. */
export function variantTable(results: readonly PhaseResult[], chain: ChainName): string | undefined {
  const rows = results.filter((r) => r.chain === chain && r.operation === "settle" && r.facilitator === "reference-nm");
  if (rows.length === 0) return undefined;
  const lines = [
    "| concurrency | ours successful/s | reference + nonceManager successful/s | ours / ref+nm | ref+nm p50 / p99 ms | ref+nm successful |",
    "|---:|---:|---:|---:|---:|---:|",
  ];
  for (const v of rows) {
    const { ours } = pair(results, chain, "settle", v.concurrency);
    if (!ours?.settle || !v.settle) continue;
    lines.push(
      `| ${v.concurrency} | ${fmt(ours.settle.successfulPerSecond, 1)} | ${fmt(v.settle.successfulPerSecond, 1)} | ` +
        `${times(ratio(ours.settle.successfulPerSecond, v.settle.successfulPerSecond))} | ${fmt(v.latencyMs.p50, 1)} / ${fmt(v.latencyMs.p99, 1)} | ${settledCell(v)} |`,
    );
  }
  return lines.join("\n");
}

function settledCell(r: PhaseResult): string {
  const s = r.settle!;
  const extra = s.unbackedSuccesses ? `, ${s.unbackedSuccesses} success:true without funds!` : s.fundsMovedFor > r.positive ? `, ${s.fundsMovedFor - r.positive} moved but not answered success` : "";
  return `${s.successful}/${r.requests}${extra}`;
}

/** Why the non-successful answers were not, per phase (reason codes with counts). */
export function failureNotes(results: readonly PhaseResult[]): string[] {
  return results
    .filter((r) => Object.keys(r.negativeReasons).length > 0)
    .map((r) => {
      const reasons = Object.entries(r.negativeReasons)
        .map(([k, v]) => `${v}× \`${k}\``)
        .join(", ");
      return `- ${r.chain} ${r.operation} c=${r.concurrency} ${r.facilitator}: ${reasons}`;
    });
}

export function checkTargets(results: readonly PhaseResult[], chains: readonly ChainName[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const chain of chains) {
    const verifyRatios = levels(results, chain, "verify").map((c) => {
      const { ours, ref } = pair(results, chain, "verify", c);
      return { c, r: ours && ref ? ratio(ours.throughput, ref.throughput) : undefined, allValid: !!ours && ours.positive === ours.requests };
    });
    checks.push({
      chain,
      name: "verify throughput >= 2x the reference (every concurrency level, every answer isValid)",
      met: verifyRatios.length > 0 && verifyRatios.every((v) => (v.r === undefined || v.r >= 2) && v.allValid),
      detail: verifyRatios.map((v) => `c=${v.c}: ${times(v.r)}${v.allValid ? "" : " (not all valid)"}`).join(", "),
    });
    const top = Math.max(...levels(results, chain, "settle"));
    const { ours, ref } = pair(results, chain, "settle", top);
    if (ours?.settle && ref?.settle) {
      const r = ratio(ours.settle.successfulPerSecond, ref.settle.successfulPerSecond);
      checks.push({
        chain,
        name: `settle at concurrency ${top}: every payment succeeds`,
        met: ours.settle.allSucceeded,
        detail: `${ours.settle.successful}/${ours.requests} successful (success:true ${ours.positive}, funds moved ${ours.settle.fundsMovedFor})`,
      });
      checks.push({
        chain,
        name: `settle at concurrency ${top}: >= 3x the reference's successful settles per second`,
        met: r === undefined ? ours.settle.successful > 0 : r >= 3,
        detail: `${fmt(ours.settle.successfulPerSecond, 1)}/s vs ${fmt(ref.settle.successfulPerSecond, 1)}/s = ${times(r)}`,
      });
    }
  }
  return checks;
}

export function targetsTable(checks: readonly TargetCheck[]): string {
  return [
    "| chain | target | met | measured |",
    "|---|---|---|---|",
    ...checks.map((c) => `| ${c.chain} | ${c.name} | ${c.met ? "yes" : "**NO**"} | ${c.detail} |`),
  ].join("\n");
}

export function resultsSection(results: readonly PhaseResult[], chains: readonly ChainName[]): string {
  const parts: string[] = [];
  for (const chain of chains) {
    parts.push(`### ${CHAIN_TITLES[chain]}`, "", "**verify**", "", verifyTable(results, chain), "", "**settle**", "", settleTable(results, chain), "");
    parts.push("**facilitator process CPU per request** (user + system, all threads; the reference's includes its failed settles)", "", cpuTable(results, chain), "");
    const variant = variantTable(results, chain);
    if (variant) {
      parts.push(
        "**settle, against the reference with viem's `nonceManager` on its account** (not how the official example builds it; shown because the example's reference loses most concurrent settles to nonce races, which flatters the ratio above)",
        "",
        variant,
        "",
      );
    }
  }
  return parts.join("\n");
}

/** The `other` cores (work outside this benchmark) across phases: mean, min, max. */
function loadSummary(results: readonly PhaseResult[]): string {
  const other = results.map((r) => r.cores.other).filter((v): v is number => typeof v === "number");
  if (other.length === 0) return "not measured";
  const mean = other.reduce((a, b) => a + b, 0) / other.length;
  return `${mean.toFixed(2)} cores on average (${Math.min(...other).toFixed(2)} to ${Math.max(...other).toFixed(2)} per phase)`;
}

export function markdown(opts: RawResults & { resultsFile: string; analysis: string }): string {
  const { machine, settings: s } = opts;
  const failures = failureNotes(opts.results);
  return `# Benchmarks: our facilitator vs the reference x402 facilitator

Generated by \`pnpm bench\` (\`bench/run.ts\`) on ${opts.startedAt}; the whole run took ${opts.durationS.toFixed(0)} s.
Raw results: [\`${opts.resultsFile}\`](${opts.resultsFile}). A benchmark, not a test: nothing here fails CI.

## Command

\`\`\`sh
pnpm bench                                         # compile contracts, then tsx bench/run.ts (3-4 minutes)
BENCH_CHAINS=evm BENCH_CONCURRENCY=64 pnpm bench   # a subset
BENCH_PROFILE=ours pnpm bench                      # also V8 CPU profiles of our facilitator (bench/results/profiles/)
BENCH_SPANS=1 pnpm bench                           # also timing spans inside both facilitators (RPC calls, ledger writes)
\`\`\`

Other knobs: \`BENCH_VERIFY_REQUESTS\` (per round, default 300), \`BENCH_SETTLE_REQUESTS\` (per round, default 200), \`BENCH_ROUNDS\` (default 2), \`BENCH_OPERATIONS\` (verify,settle), \`BENCH_OURS_EVM_KEYS\` (default 1), \`BENCH_REFERENCE_NONCE_MANAGER=0\` (skip that variant), \`BENCH_MARKDOWN=0\` (do not rewrite this file).
Tools: \`bench/tools/cpu-costs.ts\` (CPU cost of each pure step, in-process), \`bench/tools/profile-summary.ts\` (a CPU profile by package / by our function), \`bench/tools/spans.ts\` (spans of a results file), \`bench/tools/report.ts\` (re-render this file from a results file).

## Machine

| | |
|---|---|
| CPUs (\`nproc\`) | ${machine.nproc} |
| CPU model | ${machine.cpuModel} |
| memory | ${machine.memoryGiB.toFixed(0)} GiB |
| OS | ${machine.os} |
| Node | ${machine.node} |
| other work on the machine | ${opts.background} cores busy just before the run; during the timed phases ${loadSummary(opts.results)} |
${Object.entries(machine.versions)
  .map(([k, v]) => `| ${k} | ${v} |`)
  .join("\n")}

## Results

${s.rounds * s.verifyRequests} verify and ${s.rounds * s.settleRequests} settle requests per facilitator per concurrency level (${s.rounds} rounds of ${s.verifyRequests} / ${s.settleRequests}), fresh payments for every round.
"ours / ref" is the ratio of throughputs (verify) or of successful settles per second (settle). Latencies are client-side, send to last byte.

${resultsSection(opts.results, s.chains)}
${failures.length ? `Answers that were not valid / not successful:\n\n${failures.join("\n")}\n` : "Every answer was valid / successful.\n"}
## Targets

${targetsTable(opts.checks)}

## Methodology

- **Same chains, same client, same run.** One anvil (base-sepolia's chain id 84532, automine: each transaction is mined as it arrives) with the TestUSDC token and a payer holding tokens and no ETH; one local Solana node (litesvm behind the project's JSON-RPC front, 400 ms slots, a transaction lands when sent) with a USDC-like mint, a payer holding tokens and no SOL, and a payee. Both facilitators run against these same nodes in the same \`pnpm bench\`.
- **Each facilitator in its own process.** Ours: \`composeServices\` from packages/server, as \`pnpm start\` composes it (embedded LMDB ledger, metrics, rate-limit and API-key guards as configured by default, request logs off). The reference: \`x402Facilitator\` (\`@x402/core/facilitator\`) with \`ExactEvmScheme\` (\`@x402/evm/exact/facilitator\`) over a viem wallet client wrapped by \`toFacilitatorEvmSigner\`, and \`ExactSvmScheme\` (\`@x402/svm/exact/facilitator\`) over \`toFacilitatorSvmSigner\`, assembled as in the x402 repository's facilitator example, behind a small express app with the same \`POST /verify\` and \`POST /settle\` routes and no logging. Each runs in a child process, so the one measured has its event loop to itself and the load client's work is not counted against it; the Solana node is a third child process; anvil is its own process.
- **Keys.** The same number each: ours ${s.oursEvmKeys} EVM key (anvil dev account 1${s.oursEvmKeys > 1 ? ".." + s.oursEvmKeys : ""}) and one Solana fee payer; the reference anvil dev account 5 (funded with ETH by anvil) and its own Solana fee payer.${s.nonceManagedVariant ? " The nonce-managed variant: dev account 6." : ""}
- **Local-chain settings.** Both poll receipts / signature statuses every ${s.pollingIntervalMs} ms (what the embedded default uses on local chains; viem's default for Base would add up to a second to each of the reference's receipt waits).
- **Pre-signed payloads.** Every round gets fresh payments, signed before its clock starts. EVM: EIP-3009 \`TransferWithAuthorization\` signatures by the payer (random 32-byte nonces, valid for an hour), to a payee address that is fresh for every round, so its balance change belongs to that round alone. Solana: transactions built and partially signed by the official \`@x402/svm\` client (\`ExactSvmScheme\` from \`@x402/svm/exact/client\`), unique through the client's random memo, naming the fee payer of the facilitator they go to; one payee for both (rounds never overlap). Amounts: ${s.amount.evm} base units (EVM), ${s.amount.svm} (Solana). Bodies are x402 v2 facilitator requests, serialised once.
- **Client.** One Node \`http\` client for both: a keep-alive agent with as many sockets as the concurrency level, opened before the clock starts, and a fixed number of requests in flight (1, 16, 64) until every body of the round is sent. Throughput is answers / wall time (first request sent to last answer).
- **Rounds.** Each level runs in ${s.rounds} rounds that alternate the order (ours then reference, then reference then ours), and the rounds are summed: on a shared machine a slow spell then falls on both rather than on whichever ran at that moment. The CPU time of each process (from /proc) is recorded per round, and so is the machine's total: "other" is everything not in this benchmark.
- **What "successful" means.** A settle counts only if the answer says \`success: true\` **and** the funds moved: the payee's token balance is read before and after each round (and again 500 ms later, for late arrivals), and a round's successful count is min(success:true answers, balance change / amount). "Successful/s" divides by wall time. A verify counts when it answers \`isValid: true\`; every payment here is valid, so anything else is a facilitator failure.
- **Warm-up.** Before its first timed round on a chain, each facilitator handles 40 verifies and 16 settles that are not counted (JIT, caches, connections, nonce managers).
- **A shared machine.** These numbers come from a 2-core virtual machine that other work shares (see "other work" above); run-to-run spread of a throughput is easily ±20 %. The CPU-per-request tables are steadier than throughput and show the same ordering.

## Where the time goes

${opts.analysis.trim()}
`;
}
