/**
 * A timed phase: one facilitator, one endpoint, one concurrency level, run as rounds of fresh
 * payments (interleaved with the other facilitators' rounds by the caller) and summed.
 */
import { get, type Agent } from "node:http";
import { summarize, tally, type LatencySummary } from "./stats.ts";
import { keepAliveAgent, runLoad, type Answer } from "./load.ts";
import { delta, machineBusyMs, snapshot, type Probe } from "./cpu.ts";
import type { SpanStat } from "./spans.ts";

export type ChainName = "evm" | "svm";
/** EVM: how a payment moves the funds (bench/lib/evm-payments.ts). Solana has one: `exact`. */
export const EVM_METHODS = ["eip3009", "permit2", "permit2-eip2612", "upto"] as const;
export type EvmMethod = (typeof EVM_METHODS)[number];
export type PaymentMethod = EvmMethod | "exact";
/** `reference-nm`: the reference with viem's nonce manager on its account (not the official example). */
export type FacilitatorName = "ours" | "reference" | "reference-nm";
export type Operation = "verify" | "settle";

export interface PreparedPhase {
  bodies: Buffer[];
  /** Token balance of the payee these payments pay (base units). */
  payeeBalance(): Promise<bigint>;
}

export interface Target {
  name: FacilitatorName;
  url: string;
  /** Processes whose CPU time is recorded per phase: the facilitator, the chain node, the load client. */
  probes: Probe[];
  /** The facilitator's timing spans since the last call (with BENCH_SPANS=1). */
  spans?: () => Promise<Record<string, SpanStat>>;
  /** `n` fresh payments for `operation`, signed now, before the clock starts. */
  prepare(n: number, operation: Operation): Promise<PreparedPhase>;
}

export interface PhaseResult {
  chain: ChainName;
  /** Absent in results saved before there was more than one per chain: EVM's eip3009, Solana's exact. */
  method?: PaymentMethod;
  operation: Operation;
  facilitator: FacilitatorName;
  concurrency: number;
  requests: number;
  /** How many rounds the requests were split into (alternating with the other facilitator). */
  rounds: number;
  /** Sum of the rounds' wall times (first request sent to last answer, per round). */
  wallMs: number;
  /** Answers per second, whatever they said. */
  throughput: number;
  latencyMs: LatencySummary;
  httpStatus: Record<string, number>;
  /** verify: isValid true; settle: success true. */
  positive: number;
  /** Why the others were not (reason codes, or transport errors). */
  negativeReasons: Record<string, number>;
  /** CPU milliseconds each probed process spent per request during the phase. */
  cpuMsPerRequest: Record<string, number>;
  /**
   * Cores each probed process used on average during the phase (1 = one core busy throughout), and
   * `other`: everything else the machine ran meanwhile (other work on a shared machine).
   */
  cores: Record<string, number>;
  /** Timing spans inside the facilitator (BENCH_SPANS=1 only). */
  spans?: Record<string, SpanStat>;
  settle?: SettleCheck;
}

export interface SettleCheck {
  amountPerPayment: string;
  payeeDelta: string;
  /** payeeDelta / amount: payments whose funds reached the payee. */
  fundsMovedFor: number;
  /** Transfers that arrived after a round's last answer (read again after a grace period). */
  lateArrivals: number;
  /** success:true AND funds moved: min(positive, fundsMovedFor), per round. */
  successful: number;
  /** successful / wall time. */
  successfulPerSecond: number;
  /** Every payment answered success:true and every one moved its funds. */
  allSucceeded: boolean;
  /** success:true answers not matched by funds on chain (must be 0). */
  unbackedSuccesses: number;
}

/** One uninterrupted run of requests; a phase is one or more rounds. */
export interface Round {
  answers: Answer[];
  wallMs: number;
  cpu: Record<string, number>;
  machineBusyMs: number;
  spans?: Record<string, SpanStat>;
  settle?: { payeeDelta: bigint; fundsMovedFor: number; lateArrivals: number; successful: number };
}

const GRACE_MS = 500;

export async function runRound(operation: Operation, target: Target, concurrency: number, requests: number, amount: bigint): Promise<Round> {
  const prepared = await target.prepare(requests, operation);
  const before = operation === "settle" ? await prepared.payeeBalance() : 0n;
  const agent = keepAliveAgent(concurrency);
  await openConnections(agent, target.url, concurrency);
  await target.spans?.();
  const cpuBefore = snapshot(target.probes);
  const busyBefore = machineBusyMs();
  const { answers, wallMs } = await runLoad(`${target.url}/${operation}`, prepared.bodies, concurrency, agent);
  const busy = machineBusyMs() - busyBefore;
  const cpu = delta(cpuBefore, snapshot(target.probes));
  const spans = await target.spans?.();
  agent.destroy();
  const round: Round = { answers, wallMs, cpu, machineBusyMs: busy, spans };
  if (operation === "settle") {
    const atEnd = await prepared.payeeBalance();
    await new Promise((r) => setTimeout(r, GRACE_MS));
    const after = await prepared.payeeBalance();
    const fundsMovedFor = Number((after - before) / amount);
    const positive = answers.filter((a) => isPositive(operation, a)).length;
    round.settle = { payeeDelta: after - before, fundsMovedFor, lateArrivals: Number((after - atEnd) / amount), successful: Math.min(positive, fundsMovedFor) };
  }
  return round;
}

export function phaseResult(
  key: { chain: ChainName; method: PaymentMethod; operation: Operation; facilitator: FacilitatorName; concurrency: number },
  rounds: readonly Round[],
  amount: bigint,
): PhaseResult {
  const answers = rounds.flatMap((r) => r.answers);
  const wallMs = rounds.reduce((a, r) => a + r.wallMs, 0);
  const cpu: Record<string, number> = {};
  for (const r of rounds) for (const [k, v] of Object.entries(r.cpu)) cpu[k] = (cpu[k] ?? 0) + v;
  const ours = Object.values(cpu).reduce((a, b) => a + b, 0);
  const other = Math.max(0, rounds.reduce((a, r) => a + r.machineBusyMs, 0) - ours);
  const positive = answers.filter((a) => isPositive(key.operation, a)).length;
  const result: PhaseResult = {
    ...key,
    requests: answers.length,
    rounds: rounds.length,
    wallMs,
    throughput: (answers.length / wallMs) * 1000,
    latencyMs: summarize(answers.map((a) => a.ms)),
    httpStatus: tally(answers.map((a) => String(a.status))),
    positive,
    negativeReasons: tally(answers.filter((a) => !isPositive(key.operation, a)).map(reasonOf)),
    cpuMsPerRequest: Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, round(v / answers.length, 3)])),
    cores: { ...Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, round(v / wallMs, 2)])), other: round(other / wallMs, 2) },
  };
  if (rounds.some((r) => r.spans)) result.spans = mergeSpans(rounds.map((r) => r.spans ?? {}));
  if (key.operation === "settle") {
    const sum = (f: (s: NonNullable<Round["settle"]>) => number) => rounds.reduce((a, r) => a + f(r.settle!), 0);
    const fundsMovedFor = sum((s) => s.fundsMovedFor);
    const successful = sum((s) => s.successful);
    result.settle = {
      amountPerPayment: amount.toString(),
      payeeDelta: rounds.reduce((a, r) => a + r.settle!.payeeDelta, 0n).toString(),
      fundsMovedFor,
      lateArrivals: sum((s) => s.lateArrivals),
      successful,
      successfulPerSecond: (successful / wallMs) * 1000,
      allSucceeded: positive === answers.length && fundsMovedFor === answers.length,
      unbackedSuccesses: Math.max(0, positive - fundsMovedFor),
    };
  }
  return result;
}

function isPositive(operation: Operation, a: Answer): boolean {
  const body = a.body as { isValid?: unknown; success?: unknown } | null;
  return a.status === 200 && (operation === "verify" ? body?.isValid === true : body?.success === true);
}

function reasonOf(a: Answer): string {
  const b = (a.body ?? {}) as Record<string, unknown>;
  const reason = b.invalidReason ?? b.errorReason ?? b.transportError ?? b.error;
  // One line: some reasons carry viem's multi-line error text, which would break a table or a list item.
  const text = typeof reason === "string" ? reason : JSON.stringify(reason ?? null);
  return `${a.status}:${text.replace(/\s+/g, " ").slice(0, 80)}`;
}

/** One idle round trip per socket first, so the timed requests find their connections open. */
async function openConnections(agent: Agent, url: string, n: number): Promise<void> {
  const once = () =>
    new Promise<void>((resolve, reject) => {
      const req = get(`${url}/supported`, { agent }, (res) => {
        res.resume();
        res.on("end", () => resolve());
      });
      req.on("error", reject);
    });
  await Promise.all(Array.from({ length: n }, once));
}

const round = (n: number, digits: number) => Math.round(n * 10 ** digits) / 10 ** digits;

function mergeSpans(all: readonly Record<string, SpanStat>[]): Record<string, SpanStat> {
  const merged: Record<string, { count: number; totalMs: number }> = {};
  for (const spans of all) {
    for (const [k, v] of Object.entries(spans)) {
      const m = (merged[k] ??= { count: 0, totalMs: 0 });
      m.count += v.count;
      m.totalMs += v.totalMs;
    }
  }
  return Object.fromEntries(
    Object.entries(merged)
      .sort((a, b) => b[1].totalMs - a[1].totalMs)
      .map(([k, v]) => [k, { count: v.count, totalMs: round(v.totalMs, 1), meanMs: round(v.totalMs / v.count, 3) }]),
  );
}
