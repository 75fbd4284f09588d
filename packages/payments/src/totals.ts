/**
 * Day totals per payee, network and asset: what one record adds to them, what a change of a record
 * adds, and the /usage report read from them. A record counts once, under its current outcome;
 * amounts, inference records and usage count for settled payments only.
 */
import { dayOf } from "./record.ts";
import type { Bucket, BucketKey, Counters, PaymentRecord } from "./types.ts";
import { costUnits, formatCost } from "./usage-metadata.ts";

export const COUNTER_NAMES = ["payments", "success", "failed", "pending", "error", "amount", "inferenceRecords", "usageReports", "inputTokens", "outputTokens", "cost"] as const;
export type CounterName = (typeof COUNTER_NAMES)[number];
/** Counters kept as exact big integers (decimal strings in stores). */
export const BIG_COUNTERS: readonly CounterName[] = ["amount", "cost"];

export function zeroCounters(): Counters {
  return { payments: 0, success: 0, failed: 0, pending: 0, error: 0, amount: 0n, inferenceRecords: 0, usageReports: 0, inputTokens: 0, outputTokens: 0, cost: 0n };
}

export function bucketOf(r: Pick<PaymentRecord, "time" | "payTo" | "network" | "asset">): BucketKey {
  return { day: dayOf(r.time), payTo: r.payTo, network: r.network, asset: r.asset };
}

/** What `record` adds to its bucket; nothing for no record. */
export function contribution(record: PaymentRecord | undefined): Counters {
  const c = zeroCounters();
  if (!record) return c;
  c.payments = 1;
  c[record.outcome] = 1;
  if (record.outcome !== "success") return c;
  c.amount = BigInt(record.amount);
  if (record.inferenceRecordId) c.inferenceRecords = 1;
  if (record.usage) {
    c.usageReports = 1;
    c.inputTokens = record.usage.inputTokens ?? 0;
    c.outputTokens = record.usage.outputTokens ?? 0;
    c.cost = costUnits(record.usage.cost);
  }
  return c;
}

/** `a + sign * b`, counter by counter. */
export function addCounters(a: Counters, b: Counters, sign: 1 | -1 = 1): Counters {
  const out = zeroCounters();
  for (const k of COUNTER_NAMES) (out as unknown as Record<string, number | bigint>)[k] = sign === 1 ? plus(a[k], b[k]) : minus(a[k], b[k]);
  return out;
}

const plus = (x: number | bigint, y: number | bigint) => (typeof x === "bigint" ? x + (y as bigint) : x + (y as number));
const minus = (x: number | bigint, y: number | bigint) => (typeof x === "bigint" ? x - (y as bigint) : x - (y as number));

/** What replacing `before` with `after` (the same payment, the same bucket) adds to the bucket. */
export function counterDelta(before: PaymentRecord | undefined, after: PaymentRecord): Counters {
  const d = addCounters(contribution(after), contribution(before), -1);
  // A success is final, so the big sums only grow; a store may rely on it.
  if (d.amount < 0n || d.cost < 0n) throw new Error("payments record: a settled amount would go down");
  return d;
}

export const isZero = (c: Counters): boolean => COUNTER_NAMES.every((k) => c[k] === 0 || c[k] === 0n);

/** Counters as JSON-able values (big ones as decimal strings). */
export function countersJson(c: Counters): Record<CounterName, number | string> {
  return Object.fromEntries(COUNTER_NAMES.map((k) => [k, typeof c[k] === "bigint" ? c[k].toString() : c[k]])) as Record<CounterName, number | string>;
}

/** Counters from stored values (missing ones are 0). */
export function countersFrom(values: Partial<Record<string, number | string>>): Counters {
  const c = zeroCounters();
  for (const k of COUNTER_NAMES) {
    const v = values[k];
    if (v === undefined) continue;
    (c as unknown as Record<string, number | bigint>)[k] = BIG_COUNTERS.includes(k) ? BigInt(v) : Number(v);
  }
  return c;
}

export interface UsageDay {
  day: string;
  payments: number;
  success: number;
  failed: number;
  pending: number;
  error: number;
  /** Settled base units per network and asset. */
  amounts: { network: string; asset: string; amount: string }[];
  inferenceRecords: number;
  usage: { reports: number; inputTokens: number; outputTokens: number; cost: string };
}

export interface UsageReport {
  from: string;
  to: string;
  days: number;
  payees: { payTo: string; total: Omit<UsageDay, "day">; days: UsageDay[] }[];
}

/** The /usage answer: per payee, per day (only days with payments), and each payee's total over the range. */
export function usageReport(buckets: readonly Bucket[], days: readonly string[]): UsageReport {
  const byPayee = new Map<string, Map<string, Bucket[]>>();
  for (const b of buckets) {
    const payee = byPayee.get(b.payTo) ?? new Map<string, Bucket[]>();
    byPayee.set(b.payTo, payee);
    payee.set(b.day, [...(payee.get(b.day) ?? []), b]);
  }
  const payees = [...byPayee.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([payTo, perDay]) => {
      const dayList = [...perDay.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([day, bs]) => ({ day, ...summarise(bs) }));
      return { payTo, total: summarise([...perDay.values()].flat()), days: dayList };
    });
  return { from: days[0] ?? "", to: days[days.length - 1] ?? "", days: days.length, payees };
}

function summarise(buckets: readonly Bucket[]): Omit<UsageDay, "day"> {
  const sum = buckets.reduce((acc, b) => addCounters(acc, b.counters), zeroCounters());
  const amounts = new Map<string, { network: string; asset: string; amount: bigint }>();
  for (const b of buckets) {
    const key = `${b.network}\n${b.asset}`;
    const a = amounts.get(key) ?? { network: b.network, asset: b.asset, amount: 0n };
    a.amount += b.counters.amount;
    amounts.set(key, a);
  }
  return {
    payments: sum.payments,
    success: sum.success,
    failed: sum.failed,
    pending: sum.pending,
    error: sum.error,
    amounts: [...amounts.values()].filter((a) => a.amount > 0n).map((a) => ({ ...a, amount: a.amount.toString() })),
    inferenceRecords: sum.inferenceRecords,
    usage: { reports: sum.usageReports, inputTokens: sum.inputTokens, outputTokens: sum.outputTokens, cost: formatCost(sum.cost) },
  };
}
