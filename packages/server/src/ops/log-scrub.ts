/**
 * A last line of defence for secrets in logs. pino's path redaction only blanks fields at the paths it
 * was given; a key nested one level deeper, or an RPC URL quoted inside an error message (viem puts
 * the URL in its messages), slips past it. This destination replaces every known secret value in each
 * finished line before it is written, wherever it appears.
 */
import pino from "pino";
import { parseRedisUrl } from "@facilitator/redis";
import type { Config } from "../config.ts";

/** Shorter values are not scrubbed: they would blank ordinary words, and no real key is this short. */
const MIN_SECRET_LENGTH = 8;

/** The configuration's secret values: keys of every role, API keys, Redis passwords, secret parts of RPC URLs. */
export function configSecrets(
  config: Partial<Pick<Config, "evmKeys" | "svmKeys" | "relayerKey" | "apiKeys" | "inferenceApiKeys" | "metricsApiKey" | "redisUrl" | "networkOverrides">> & { tee?: { operatorApiKey?: string }; payments?: { webhooks: { secret: string }[] } },
): string[] {
  const secrets: string[] = [];
  for (const k of [...(config.evmKeys ?? []), ...(config.relayerKey ? [config.relayerKey] : [])]) secrets.push(k, k.replace(/^0x/i, ""));
  secrets.push(...(config.svmKeys ?? []), ...(config.apiKeys ?? []), ...(config.inferenceApiKeys ?? []), ...(config.metricsApiKey ? [config.metricsApiKey] : []), ...(config.tee?.operatorApiKey ? [config.tee.operatorApiKey] : []));
  secrets.push(...(config.payments?.webhooks ?? []).map((w) => w.secret)); // webhook secrets sign notices
  for (const url of [config.redisUrl, ...(config.networkOverrides ?? []).map((o) => o.rpcUrl)]) secrets.push(...urlSecrets(url));
  if (config.redisUrl) secrets.push(...clusterUrlSecrets(config.redisUrl));
  return [...new Set(secrets.filter((s) => s.length >= MIN_SECRET_LENGTH))];
}

/** A URL's password, and its path and query (hosted RPC providers put the API key there). */
export function urlSecrets(raw: string | undefined): string[] {
  if (!raw) return [];
  try {
    const u = new URL(raw);
    const out: string[] = [];
    if (u.password) out.push(decodeURIComponent(u.password), u.password);
    const rest = `${u.pathname}${u.search}`;
    if (rest.replace(/\/+$/, "").length > 0) out.push(rest.replace(/^\//, ""));
    return out;
  } catch {
    return [raw];
  }
}

/** A Redis Cluster URL's password (not a WHATWG URL: urlSecrets can only blank it whole). */
function clusterUrlSecrets(raw: string): string[] {
  try {
    const target = parseRedisUrl(raw);
    return target.kind === "cluster" && target.password ? [target.password, encodeURIComponent(target.password)] : [];
  } catch {
    return [];
  }
}

/** Replaces each of `secrets` (case-insensitively) with `[redacted]`. */
export function scrubber(secrets: readonly string[]): (line: string) => string {
  const usable = [...new Set(secrets.filter((s) => s.length >= MIN_SECRET_LENGTH))].sort((a, b) => b.length - a.length);
  if (!usable.length) return (line) => line;
  const pattern = new RegExp(usable.map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|"), "gi");
  return (line) => line.replace(pattern, "[redacted]");
}

/** A pino destination that scrubs `secrets` from every line before handing it to `destination` (stdout by default). */
export function scrubbingDestination(secrets: readonly string[], destination: pino.DestinationStream = pino.destination({ dest: 1, sync: true })): pino.DestinationStream {
  const scrub = scrubber(secrets);
  return { write: (line: string) => destination.write(scrub(line)) };
}

/** A URL's host name: node and resolver errors quote it ("getaddrinfo ENOTFOUND <host>"), and it can name an internal machine. */
export function urlHost(raw: string): string {
  try {
    return new URL(raw).hostname;
  } catch {
    return "";
  }
}
