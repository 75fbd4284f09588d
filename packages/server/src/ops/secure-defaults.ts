/**
 * Production settings whose absence leaves the facilitator open to anyone who can reach it. They are
 * not errors (a private network may not need them), so the start goes on, but each is said once, at
 * start-up, naming the variable and the risk.
 */
import type { Config } from "../config.ts";

export interface InsecureDefault {
  variable: string;
  message: string;
}

export function insecureDefaults(
  config: Pick<Config, "mode" | "apiKeys" | "rateLimitPerMinute" | "metricsPort" | "metricsApiKey">,
): InsecureDefault[] {
  if (config.mode !== "production") return [];
  const found: InsecureDefault[] = [];
  if (config.apiKeys.length === 0) {
    found.push({
      variable: "API_KEYS",
      message: "API_KEYS is not set: anyone who can reach this server can call /verify and /settle and have this facilitator's keys pay gas for their settlements; set API_KEYS and give each resource server its key",
    });
  }
  if (!config.rateLimitPerMinute) {
    found.push({
      variable: "RATE_LIMIT_PER_MINUTE",
      message: "RATE_LIMIT_PER_MINUTE is not set: /verify, /settle and the inference door have no per-client limit, so one caller can take up the RPC nodes and the signers; set a limit (and TRUST_PROXY behind a load balancer)",
    });
  }
  if (config.metricsPort === undefined && !config.metricsApiKey) {
    found.push({
      variable: "METRICS_API_KEY",
      message: "/metrics is served on the API port without a key: anyone can read signer addresses, balances and traffic; set METRICS_API_KEY or METRICS_PORT",
    });
  }
  return found;
}

/** Logs each insecure default once, as a warning. */
export function warnInsecureDefaults(config: Parameters<typeof insecureDefaults>[0], logger: { warn(obj: object, msg: string): void }): InsecureDefault[] {
  const found = insecureDefaults(config);
  for (const f of found) logger.warn({ variable: f.variable, check: "secure-defaults" }, f.message);
  return found;
}
