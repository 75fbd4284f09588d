/**
 * The payments record's data: one compact record per payment, the day totals the views read, and the
 * webhook deliveries of its outbox. Stores (LMDB, Redis) live in `@facilitator/ledger`.
 */
import type { UsageMetadata } from "./usage-metadata.ts";

/**
 * What became of a payment, as far as the facilitator knows:
 *  - `success`, `failed`: final (a failed payment may still succeed on a retry of the same payload);
 *  - `pending`: answered `settlement_pending`, a retry or the collector will learn the outcome;
 *  - `error`: the facilitator could not complete the settle (`unexpected_settle_error`), outcome unknown.
 */
export type PaymentOutcome = "success" | "failed" | "pending" | "error";

export const PAYMENT_OUTCOMES: readonly PaymentOutcome[] = ["success", "failed", "pending", "error"];

export interface PaymentRecord {
  /** `paymentId`: a hash of network, scheme, payee, asset and the payer's signed payload. */
  id: string;
  /** CAIP-2 (`eip155:84532`). */
  network: string;
  scheme: string;
  payer?: string;
  payTo: string;
  /** Base units: what settled for a success (an `upto` charge may be less than asked), what was asked otherwise. */
  amount: string;
  asset: string;
  transaction?: string;
  outcome: PaymentOutcome;
  /** The reason string of a refusal or of a non-final answer. */
  reason?: string;
  /** From the settle request to this outcome, ms (for a collected outcome: from the first request). */
  latencyMs: number;
  /** When the facilitator first answered for this payment (ms); its day is the day it counts in. */
  time: number;
  updatedAt: number;
  /** The outcome was collected by the facilitator itself after a `settlement_pending` nobody came back for. */
  collected?: boolean;
  /** Answers (and collections) that fed this record. */
  answers: number;
  usage?: UsageMetadata;
  /** The inference record this settle carried (`extensions.inferenceSettlement.id`). */
  inferenceRecordId?: string;
  /** Ids of the webhook deliveries made for this payment. */
  deliveries?: string[];
  /** Compare-and-set version in its store. */
  version: number;
}

/** Sums over the payments of one payee, network, asset and day. */
export interface Counters {
  payments: number;
  success: number;
  failed: number;
  pending: number;
  error: number;
  /** Settled base units. */
  amount: bigint;
  /** Inference records carried by settled payments. */
  inferenceRecords: number;
  /** Settled payments that carried `usageMetadata`. */
  usageReports: number;
  inputTokens: number;
  outputTokens: number;
  /** Sum of `usageMetadata.cost` in units of 10^-18 (exact). */
  cost: bigint;
}

/** What a day total is kept under. */
export interface BucketKey {
  /** UTC `YYYY-MM-DD`. */
  day: string;
  payTo: string;
  network: string;
  asset: string;
}

export interface Bucket extends BucketKey {
  counters: Counters;
}

export type DeliveryState = "pending" | "delivered" | "failed";

/** One webhook notice to one receiver: the outbox's unit of work, never dropped until delivered or given up. */
export interface Delivery {
  /** Hash of the notice id and the receiver's URL. */
  id: string;
  /** What the receiver dedupes on (the body's `id`, the `x402-webhook-id` header). */
  noticeId: string;
  paymentId: string;
  payTo: string;
  url: string;
  /** The exact body sent on every attempt (signed afresh with each attempt's timestamp). */
  body: string;
  state: DeliveryState;
  attempts: number;
  /** When the next attempt is due (ms); while one is running, when its lease ends. */
  nextAt: number;
  createdAt: number;
  lastAttemptAt?: number;
  /** The receiver's HTTP status at the last attempt. */
  lastStatus?: number;
  lastError?: string;
  deliveredAt?: number;
}

/** A write of one payment record decided from its current version (see `planWrite`). */
export interface WritePlan {
  record: PaymentRecord;
  bucket: BucketKey;
  /** Added to the bucket's counters (amount and cost never go down: a success is final). */
  delta: Counters;
  /** New deliveries to put in the outbox with the record, atomically. */
  deliveries: Delivery[];
}

export interface RecentQuery {
  network?: string;
  outcome?: PaymentOutcome;
  /** Records first seen before this time (ms), for paging. */
  before?: number;
  limit: number;
}

/**
 * Where records, day totals and the webhook outbox are kept. Every write of a record, its indexes, its
 * day totals and its new deliveries is one atomic step, so totals never count a payment twice and a
 * notice is never lost between the record and the outbox.
 */
export interface PaymentsStore {
  /**
   * Reads record `id`, asks `plan` what to write, and writes it atomically if nobody wrote the record
   * meanwhile (else reads again and asks again). Resolves with what was written, or undefined when
   * `plan` said there was nothing to write.
   */
  write(id: string, plan: (current: PaymentRecord | undefined) => WritePlan | undefined, now: number): Promise<PaymentRecord | undefined>;
  get(id: string): Promise<PaymentRecord | undefined>;
  /** Newest first. */
  recent(q: RecentQuery): Promise<PaymentRecord[]>;
  /** The day totals of `days` (UTC `YYYY-MM-DD`), of one payee when given. */
  totals(days: readonly string[], payTo?: string): Promise<Bucket[]>;
  deliveries(ids: readonly string[]): Promise<Delivery[]>;
  /** Up to `limit` deliveries due at `now`, each leased until `now + leaseMs` (nobody else takes it meanwhile). */
  claimDeliveries(now: number, leaseMs: number, limit: number): Promise<Delivery[]>;
  /**
   * Records an attempt's result (`d` with its attempts already counted), if the delivery is still at
   * `d.attempts - 1` attempts (no other process recorded this attempt meanwhile). True when written.
   */
  finishDelivery(d: Delivery, now: number): Promise<boolean>;
  close(): Promise<void>;
}
