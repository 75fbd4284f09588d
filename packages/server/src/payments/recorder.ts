/**
 * Writes the payments record as settle answers go out and as the collector collects outcomes. A write
 * is never awaited by the answer it records: a store in trouble costs a log line and a count
 * (`x402_payment_record_failures_total`), never a slower or failed settle.
 */
import type { LedgerEntry, PaymentRequest, SettleOutcome, SettleResponse } from "@facilitator/core";
import { outcomeOf, paymentId, planWrite, type PaymentsStore, type SettleObservation, type UsageMetadata, type WebhookTarget } from "@facilitator/payments";
import { Counter, type Registry } from "prom-client";

/** One /settle answer to a well-formed payment, as the app hands it over. */
export interface SettledPayment {
  request: PaymentRequest;
  body: SettleResponse;
  latencyMs: number;
  usage?: UsageMetadata;
}

export interface PaymentsRecorderOptions {
  store: PaymentsStore;
  webhooks: readonly WebhookTarget[];
  logger: { warn(obj: object, msg: string): void };
  /** Where the failure counter is registered (the facilitator's /metrics). */
  registry?: Registry;
  /** Told when a write put new deliveries in the outbox (the dispatcher sends them at once). */
  onDeliveries?: () => void;
  now?: () => number;
}

export class PaymentsRecorder {
  private readonly inFlight = new Set<Promise<void>>();
  private readonly failures: Counter<"source">;
  private readonly now: () => number;

  constructor(private readonly o: PaymentsRecorderOptions) {
    this.now = o.now ?? Date.now;
    this.failures = new Counter({
      name: "x402_payment_record_failures_total",
      help: "Payment records that could not be written (the settle answer went out regardless), by source",
      labelNames: ["source"],
      registers: o.registry ? [o.registry] : [],
    });
  }

  /** Records a /settle answer; returns at once. */
  settled(s: SettledPayment): void {
    const { request, body } = s;
    const inference = (body.extensions?.inferenceSettlement as { id?: unknown } | undefined)?.id;
    this.write("settle", {
      ...requestFields(request),
      success: body.success,
      payer: body.payer,
      transaction: body.transaction || undefined,
      amount: body.amount,
      reason: body.errorReason,
      latencyMs: s.latencyMs,
      now: this.now(),
      usage: s.usage,
      inferenceRecordId: typeof inference === "string" ? inference : undefined,
    });
  }

  /** Records an outcome the collector collected for a payment answered `settlement_pending`; returns at once. */
  collected(entry: LedgerEntry, outcome: SettleOutcome): void {
    const stored = entry.request;
    if (!stored) return;
    const now = this.now();
    this.write("collector", {
      network: entry.network,
      scheme: stored.scheme,
      payTo: stored.requirements.payTo,
      asset: stored.requirements.asset,
      payload: stored.payload,
      requestedAmount: stored.requirements.amount,
      success: outcome.success,
      payer: outcome.payer ?? entry.payer,
      transaction: outcome.transaction || entry.transaction,
      amount: outcome.success ? outcome.amount.toString() : undefined,
      reason: outcome.success ? undefined : outcome.reason,
      // Without the pending record (its write failed) the ledger entry's last write is the best start known.
      latencyMs: now - entry.updatedAt,
      now,
      collected: true,
    });
  }

  /** Resolves once every write started so far has ended (shutdown). */
  async drain(): Promise<void> {
    while (this.inFlight.size) await Promise.allSettled([...this.inFlight]);
  }

  private write(source: "settle" | "collector", o: SettleObservation): void {
    let deliveries = 0;
    const plan = (current: Parameters<typeof planWrite>[0]) => {
      const p = planWrite(current, o, this.o.webhooks);
      deliveries = p?.deliveries.length ?? 0;
      return p;
    };
    if (!outcomeOf(o.success, o.reason)) return; // a duplicate says nothing new
    // The id is computed inside the chain: a payload too deep to walk fails this write, never the answer.
    const writing = Promise.resolve()
      .then(() => this.o.store.write(paymentId(o), plan, o.now))
      .then(() => {
        if (deliveries) this.o.onDeliveries?.();
      })
      .catch((err: unknown) => {
        this.failures.inc({ source });
        this.o.logger.warn({ err, source, network: o.network, transaction: o.transaction }, "the payments record could not be written; the answer went out regardless");
      })
      .finally(() => this.inFlight.delete(writing));
    this.inFlight.add(writing);
  }
}

function requestFields(r: PaymentRequest): Pick<SettleObservation, "network" | "scheme" | "payTo" | "asset" | "payload" | "requestedAmount"> {
  return {
    network: r.network.caip2,
    scheme: r.scheme,
    payTo: r.requirements.payTo,
    asset: r.requirements.asset,
    payload: r.payload,
    requestedAmount: r.requirements.amount.toString(),
  };
}
