/**
 * Delivers the webhook outbox. Every `intervalMs` (and at once when a write put new deliveries in the
 * outbox) it leases the due deliveries, sends each, and records the result: delivered, due again after
 * the backoff, or given up. The outbox is durable and a lease runs out by itself, so a notice survives a
 * restart or a crash mid-send (it is sent again: receivers dedupe on its id); several processes on one
 * Redis share the work without sending the same attempt twice.
 */
import { afterAttempt, type Delivery, type PaymentsStore, type RetrySchedule, type WebhookTarget } from "@facilitator/payments";
import { Counter, type Registry } from "prom-client";
import type { WebhookSender } from "./webhook-http.ts";

export interface WebhookDispatcherOptions {
  store: PaymentsStore;
  /** The configured receivers: a delivery's secret is looked up here at each attempt, never stored. */
  webhooks: readonly WebhookTarget[];
  schedule: RetrySchedule;
  send: WebhookSender;
  intervalMs?: number;
  /** How long a leased delivery is left to its sender before another may take it (above the send deadline). */
  leaseMs: number;
  /** Deliveries leased per round. */
  batch?: number;
  now?: () => number;
  registry?: Registry;
  logger: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

export interface WebhookDispatcher {
  /** Run a round soon (a write just added deliveries). */
  kick(): void;
  /** One round now; resolves with how many attempts it made. */
  runOnce(): Promise<number>;
  stop(): Promise<void>;
}

export function startWebhookDispatcher(o: WebhookDispatcherOptions): WebhookDispatcher {
  const now = o.now ?? Date.now;
  const secrets = new Map(o.webhooks.map((t) => [`${t.payTo}\n${t.url}`, t.secret]));
  const attempts = new Counter({
    name: "x402_webhook_attempts_total",
    help: "Webhook delivery attempts by result: delivered, retry (due again later), failed (given up)",
    labelNames: ["result"],
    registers: o.registry ? [o.registry] : [],
  });
  let round: Promise<number> | undefined;
  let again = false;
  let stopped = false;

  async function attempt(d: Delivery): Promise<void> {
    const secret = secrets.get(`${d.payTo}\n${d.url}`);
    // A receiver removed from the configuration since the notice was made: nothing to sign with, give up.
    const next = secret
      ? afterAttempt(d, await o.send(d, secret, now()), now(), o.schedule)
      : { ...afterAttempt(d, { ok: false, error: "this receiver is no longer configured (WEBHOOKS)" }, now(), o.schedule), state: "failed" as const };
    const label = next.state === "delivered" ? "delivered" : next.state === "failed" ? "failed" : "retry";
    attempts.inc({ result: label });
    // Where the notice went is the operator's to see; its URL may hold a token, so only its origin is logged.
    const log = { event: "webhook", result: label, delivery: d.id, notice: d.noticeId, payment: d.paymentId, receiver: new URL(d.url).origin, attempts: next.attempts, status: next.lastStatus, error: next.lastError };
    if (label === "delivered") o.logger.info(log, "webhook notice delivered");
    else o.logger.warn(log, label === "failed" ? "webhook notice given up" : "webhook notice not delivered; retrying later");
    if (!(await o.store.finishDelivery(next, now()))) o.logger.warn({ delivery: d.id }, "webhook attempt recorded by another process first");
  }

  const runOnce = (): Promise<number> => {
    if (round) {
      again = true; // new work arrived mid-round: one more round right after
      return round;
    }
    round = (async () => {
      let made = 0;
      do {
        again = false;
        const due = await o.store.claimDeliveries(now(), o.leaseMs, o.batch ?? 20);
        await Promise.all(due.map((d) => attempt(d).catch((err: unknown) => o.logger.warn({ err, delivery: d.id }, "a webhook attempt could not be recorded; its lease runs out and it is tried again"))));
        made += due.length;
        again ||= due.length === (o.batch ?? 20);
      } while (again && !stopped);
      return made;
    })().finally(() => (round = undefined));
    return round;
  };

  const tick = () => void runOnce().catch((err: unknown) => o.logger.warn({ err }, "the webhook outbox could not be read; trying again next round"));
  const timer = setInterval(tick, o.intervalMs ?? 1_000);
  timer.unref();
  return {
    kick: () => {
      if (!stopped) setImmediate(tick);
    },
    runOnce,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await round?.catch(() => undefined);
    },
  };
}
