/**
 * The payments record's configuration (PAYMENTS_RETENTION_DAYS, WEBHOOKS and the WEBHOOK_* delivery
 * settings), read by loadConfig with its own helpers so every problem is reported with the others.
 * Webhook secrets are never quoted. The operator key is the one OPERATOR_API_KEY sets for every
 * operator route (config.tee.operatorApiKey), else METRICS_API_KEY.
 */
import { readFileSync } from "node:fs";
import { parseWebhookTargets, type RetrySchedule, type WebhookTarget } from "@facilitator/payments";

export interface PaymentsConfig {
  /** How long records, day totals and finished deliveries are kept (ms). */
  retentionMs: number;
  /** Receivers of outcome notices, per payee (WEBHOOKS or WEBHOOKS_FILE). */
  webhooks: WebhookTarget[];
  delivery: RetrySchedule & {
    /** One attempt's deadline (connect, send, answer), ms. */
    timeoutMs: number;
    /** May receivers sit at loopback, private or link-local addresses (WEBHOOK_ALLOW_INTERNAL)? */
    allowInternal: boolean;
  };
}

type Env = Record<string, string | undefined>;

export interface ConfigHelpers {
  int(name: string, fallback: number, min?: number, max?: number): number;
  bool(name: string, fallback: boolean): boolean;
  list(name: string): string[];
  production: boolean;
  problems: string[];
}

const DAY_MS = 86_400_000;

export function loadPaymentsConfig(env: Env, h: ConfigHelpers): PaymentsConfig {
  const allowedHosts = h.list("WEBHOOK_ALLOWED_HOSTS").map((host) => host.toLowerCase());
  let raw = env.WEBHOOKS;
  if (env.WEBHOOKS_FILE) {
    try {
      raw = readFileSync(env.WEBHOOKS_FILE, "utf8");
    } catch {
      h.problems.push(`WEBHOOKS_FILE: points at ${env.WEBHOOKS_FILE}, which cannot be read`);
    }
  }
  const { targets, problems } = parseWebhookTargets(raw, allowedHosts);
  const from = env.WEBHOOKS_FILE ? "WEBHOOKS_FILE" : "WEBHOOKS";
  h.problems.push(...problems.map((p) => `${from}: ${p}`));
  const delivery = {
    baseMs: h.int("WEBHOOK_RETRY_BASE_MS", 5_000, 10),
    maxMs: h.int("WEBHOOK_RETRY_MAX_MS", 3_600_000, 10),
    maxAttempts: h.int("WEBHOOK_MAX_ATTEMPTS", 20, 1, 1_000),
    timeoutMs: h.int("WEBHOOK_TIMEOUT_MS", 10_000, 100, 60_000),
    // The local world's receivers are on this machine; a production one's are not, unless the operator says so.
    allowInternal: h.bool("WEBHOOK_ALLOW_INTERNAL", !h.production),
  };
  return {
    retentionMs: h.int("PAYMENTS_RETENTION_DAYS", 30, 1, 3_650) * DAY_MS,
    webhooks: targets,
    delivery,
  };
}
