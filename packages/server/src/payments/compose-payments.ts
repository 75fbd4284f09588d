/** The payments record wired up: its store beside the ledger, the recorder, the webhook dispatcher and the operator routes. */
import type { RequestHandler, Router } from "express";
import type { Logger } from "pino";
import type { PaymentsStore } from "@facilitator/payments";
import { LmdbPaymentsStore, RedisPaymentsStore } from "@facilitator/ledger";
import type { Registry } from "prom-client";
import { redisReplication, type Config } from "../config.ts";
import { paymentsRoutes } from "../routes/payments.ts";
import { PaymentsRecorder } from "./recorder.ts";
import { startWebhookDispatcher, type WebhookDispatcher } from "./webhook-dispatcher.ts";
import { webhookSender } from "./webhook-http.ts";

export interface PaymentsServices {
  store: PaymentsStore;
  recorder: PaymentsRecorder;
  dispatcher: WebhookDispatcher;
  routes: Router;
  /** Waits for record writes under way, stops the dispatcher between attempts, closes the store. */
  close(): Promise<void>;
}

export interface OpenPaymentsOptions {
  logger: Logger;
  /** The facilitator's /metrics registry. */
  registry: Registry;
  /** The embedded store's directory (DATA_DIR/payments), when there is no REDIS_URL. */
  dir?: string;
  /** Run before the operator routes (a per-client rate limit). */
  guards?: RequestHandler[];
}

export function openPayments(config: Config, o: OpenPaymentsOptions): PaymentsServices {
  const { retentionMs, webhooks, delivery } = config.payments;
  // One operator key for every operator route (OPERATOR_API_KEY); a deployment with only METRICS_API_KEY uses that.
  const operatorKey = config.tee.operatorApiKey ?? config.metricsApiKey;
  // In the same Redis as the ledger, or in an LMDB directory of its own (its writes never wait on settlements').
  const store: PaymentsStore = config.redisUrl ? new RedisPaymentsStore({ redis: config.redisUrl, retentionMs, replication: redisReplication(config) }) : new LmdbPaymentsStore(o.dir!, { retentionMs });
  const logger = o.logger.child({ component: "payments" });
  const dispatcher = startWebhookDispatcher({
    store,
    webhooks,
    schedule: delivery,
    send: webhookSender({ timeoutMs: delivery.timeoutMs, allowInternal: delivery.allowInternal }),
    // Past the send deadline, so a live sender is never overtaken; a dead one's deliveries come back after it.
    leaseMs: delivery.timeoutMs + 5_000,
    registry: o.registry,
    logger,
  });
  const recorder = new PaymentsRecorder({ store, webhooks, logger, registry: o.registry, onDeliveries: () => dispatcher.kick() });
  const routes = paymentsRoutes({ store, operatorKey, retentionDays: Math.round(retentionMs / 86_400_000), guards: o.guards, logger });
  return {
    store,
    recorder,
    dispatcher,
    routes,
    async close() {
      await recorder.drain();
      await dispatcher.stop();
      await store.close();
    },
  };
}
