/**
 * From a settle answer (or an outcome the collector collected) to a payment record, and how a new
 * answer changes the record already kept. Pure rules: the stores apply them inside their writes.
 */
import { createHash } from "node:crypto";
import { Reason } from "@facilitator/core";
import type { PaymentOutcome, PaymentRecord } from "./types.ts";
import type { UsageMetadata } from "./usage-metadata.ts";

/** One answer the facilitator gave for a payment, or one outcome it collected by itself. */
export interface SettleObservation {
  /** CAIP-2. */
  network: string;
  scheme: string;
  payTo: string;
  asset: string;
  /** The payer's signed payload (`paymentPayload.payload`): what makes this payment this one. */
  payload: unknown;
  /** What the requirements asked, base units. */
  requestedAmount: string;
  success: boolean;
  payer?: string;
  transaction?: string;
  /** What settled, base units (a success's `amount`). */
  amount?: string;
  reason?: string;
  latencyMs: number;
  now: number;
  collected?: boolean;
  usage?: UsageMetadata;
  inferenceRecordId?: string;
}

/** EVM addresses in lower case (one payee, however a request spells it); anything else as it is. */
export function normalAddress(value: string): string {
  return /^0x[0-9a-fA-F]{40}$/.test(value) ? value.toLowerCase() : value;
}

/** JSON with every object's keys sorted: the same payload gives the same text however it was spelled. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return `{${entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

export const sha256Hex = (text: string, chars = 32): string => createHash("sha256").update(text).digest("hex").slice(0, chars);

/**
 * The payment's id: the same for every answer about it (a retry, a reconcile, the collector's outcome).
 * The payee and asset are in it, so a request naming another payee for the same signed payload (refused
 * as `payment_request_mismatch`) is a record of its own and never changes this one.
 */
export function paymentId(o: Pick<SettleObservation, "network" | "scheme" | "payTo" | "asset" | "payload">): string {
  return sha256Hex(["x402-payment/1", o.network, o.scheme, normalAddress(o.payTo), normalAddress(o.asset), canonicalJson(o.payload)].join("\n"));
}

/** What an answer says of the payment; undefined for a duplicate, which says nothing new. */
export function outcomeOf(success: boolean, reason: string | undefined): PaymentOutcome | undefined {
  if (success) return "success";
  if (reason === Reason.duplicateSettlement) return undefined;
  if (reason === Reason.settlementPending) return "pending";
  if (reason === Reason.unexpectedSettle) return "error";
  return "failed";
}

/** The record an observation alone would make (version 0: not stored yet). */
export function observedRecord(o: SettleObservation): PaymentRecord | undefined {
  const outcome = outcomeOf(o.success, o.reason);
  if (!outcome) return undefined;
  const record: PaymentRecord = {
    id: paymentId(o),
    network: o.network,
    scheme: o.scheme,
    payTo: normalAddress(o.payTo),
    asset: normalAddress(o.asset),
    amount: (o.success && o.amount) || o.requestedAmount,
    outcome,
    latencyMs: Math.max(0, Math.round(o.latencyMs)),
    time: o.now,
    updatedAt: o.now,
    answers: 1,
    version: 0,
  };
  if (o.payer) record.payer = normalAddress(o.payer);
  if (o.transaction) record.transaction = o.transaction;
  if (!o.success && o.reason) record.reason = o.reason;
  if (o.collected) record.collected = true;
  if (o.usage) record.usage = o.usage;
  if (o.inferenceRecordId) record.inferenceRecordId = o.inferenceRecordId;
  return record;
}

/**
 * The record after `next` (an observed record) arrives, or undefined when nothing changes. A success
 * is final: a later answer only fills in usage or an inference record it lacked (a success the
 * collector recorded, then answered to the client's retry with its headers). Otherwise the latest answer
 * tells the state (a failed payment retried may go pending, then succeed); the first time stays, so the
 * payment counts on the day it was first seen, and a collected outcome's latency runs from then.
 */
export function mergeRecord(current: PaymentRecord | undefined, next: PaymentRecord): PaymentRecord | undefined {
  if (!current) return next;
  const merged: PaymentRecord =
    current.outcome === "success"
      ? { ...current, usage: current.usage ?? next.usage, inferenceRecordId: current.inferenceRecordId ?? next.inferenceRecordId }
      : {
          ...next,
          time: current.time,
          payer: next.payer ?? current.payer,
          transaction: next.transaction ?? current.transaction,
          usage: next.usage ?? current.usage,
          inferenceRecordId: next.inferenceRecordId ?? current.inferenceRecordId,
          latencyMs: next.collected ? Math.max(0, next.updatedAt - current.time) : next.latencyMs,
          deliveries: current.deliveries,
        };
  if (!changed(current, merged)) return undefined;
  return dropUndefined({ ...merged, answers: current.answers + 1, updatedAt: next.updatedAt, version: current.version });
}

const MEANINGFUL: readonly (keyof PaymentRecord)[] = ["outcome", "reason", "transaction", "payer", "amount", "collected", "inferenceRecordId"];

function changed(a: PaymentRecord, b: PaymentRecord): boolean {
  return MEANINGFUL.some((k) => a[k] !== b[k]) || canonicalJson(a.usage) !== canonicalJson(b.usage);
}

function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** The UTC day (`YYYY-MM-DD`) of a time in ms. */
export function dayOf(time: number): string {
  return new Date(time).toISOString().slice(0, 10);
}

/** The `count` UTC days ending with the day of `now`, oldest first. */
export function lastDays(now: number, count: number): string[] {
  const today = Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth(), new Date(now).getUTCDate());
  return Array.from({ length: count }, (_, i) => dayOf(today - (count - 1 - i) * 86_400_000));
}
