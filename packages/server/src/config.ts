/**
 * Configuration from the environment. Any production variable switches the embedded local world off;
 * every problem is reported at once, before the server listens. Keys come from the environment or
 * from files (`*_FILE`) and never reach a log.
 */
import { readFileSync } from "node:fs";
import type { NetworkOverride } from "@facilitator/core";

export interface Config {
  mode: "embedded" | "production";
  host: string;
  port: number;
  logLevel: string;
  /** Networks to serve (v1 names); empty means every network the configuration gives keys for. */
  networks: string[];
  networkOverrides: NetworkOverride[];
  evmKeys: `0x${string}`[];
  svmKeys: string[];
  relayerKey?: `0x${string}`;
  relay?: { network: string; address: `0x${string}` };
  redisUrl?: string;
  dataDir: string;
  receiptTimeoutMs: number;
  batchSize: number;
  batchTimeoutMs: number;
  walrus?: { publisherUrl: string; aggregatorUrl: string; epochs: number; permanent: boolean };
  apiKeys: string[];
  inferenceApiKeys: string[];
  teeKeys: Record<string, `0x${string}`>;
  requireTeeSignature: boolean;
  rateLimitPerMinute: number;
  runWorker: boolean;
  /** /ready fails while an EVM settlement signer holds less gas money than this (wei). */
  minSignerBalanceWei: bigint;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  }
}

/** Variables whose presence means "this is a real deployment": never start the local world then. */
export const PRODUCTION_VARIABLES = [
  "EVM_PRIVATE_KEY", "EVM_PRIVATE_KEYS", "EVM_PRIVATE_KEYS_FILE", "SVM_PRIVATE_KEY", "SVM_PRIVATE_KEYS", "SVM_PRIVATE_KEYS_FILE",
  "NETWORKS", "NETWORK_OVERRIDES", "X402_SETTLEMENT_CONTRACT", "REDIS_URL", "REDIS_HOST", "WALRUS_PUBLISHER_URL", "SVM_RPC_URL",
] as const;

type Env = Record<string, string | undefined>;

export function isProduction(env: Env): boolean {
  return PRODUCTION_VARIABLES.some((v) => env[v] !== undefined && env[v] !== "");
}

export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = [];
  const int = (name: string, fallback: number, min = 0): number => {
    const raw = env[name];
    if (raw === undefined || raw === "") return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min) problems.push(`${name} must be an integer >= ${min}, got "${raw}"`);
    return n;
  };
  const wei = (name: string, fallback: bigint): bigint => {
    const raw = env[name];
    if (raw === undefined || raw === "") return fallback;
    if (/^\d+$/.test(raw)) return BigInt(raw);
    problems.push(`${name} must be a whole number of wei, got "${raw}"`);
    return fallback;
  };
  const list = (name: string): string[] => (env[name] ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  const secretList = (name: string): string[] => {
    const fromFile = env[`${name}_FILE`];
    if (!fromFile) return list(name);
    try {
      return readFileSync(fromFile, "utf8").split(/[\s,]+/).filter(Boolean);
    } catch {
      problems.push(`${name}_FILE points at ${fromFile}, which cannot be read`);
      return [];
    }
  };

  const evmKeys = [...secretList("EVM_PRIVATE_KEYS"), ...list("EVM_PRIVATE_KEY")];
  evmKeys.forEach((k, i) => {
    if (!/^0x[0-9a-fA-F]{64}$/.test(k)) problems.push(`EVM private key #${i + 1} is not 32-byte hex with 0x (value not shown)`);
  });
  const svmKeys = [...secretList("SVM_PRIVATE_KEYS"), ...list("SVM_PRIVATE_KEY")];
  svmKeys.forEach((k, i) => {
    if (!/^[1-9A-HJ-NP-Za-km-z]{64,90}$/.test(k)) problems.push(`SVM private key #${i + 1} is not a base58 64-byte secret key (value not shown)`);
  });
  const relayerKey = env.RELAYER_PRIVATE_KEY || undefined;
  if (relayerKey && !/^0x[0-9a-fA-F]{64}$/.test(relayerKey)) problems.push("RELAYER_PRIVATE_KEY is not 32-byte hex with 0x (value not shown)");

  let networkOverrides: NetworkOverride[] = [];
  if (env.NETWORK_OVERRIDES) {
    try {
      const parsed = JSON.parse(env.NETWORK_OVERRIDES);
      if (!Array.isArray(parsed)) throw new Error("not an array");
      networkOverrides = parsed;
    } catch (e) {
      problems.push(`NETWORK_OVERRIDES must be a JSON array of {name, rpcUrl?, chainId?, asset?}: ${(e as Error).message}`);
    }
  }
  // Per-network RPC variables, e.g. BASE_SEPOLIA_RPC_URL; SVM_RPC_URL is the earlier facilitator's name.
  for (const [key, value] of Object.entries(env)) {
    const m = /^([A-Z0-9_]+)_RPC_URL$/.exec(key);
    if (!m || !value || key === "SVM_RPC_URL") continue;
    networkOverrides.push({ name: m[1]!.toLowerCase().replace(/_/g, "-"), rpcUrl: value });
  }
  const networks = list("NETWORKS");
  if (env.SVM_RPC_URL) {
    const solana = networks.find((n) => n.startsWith("solana")) ?? "solana-devnet";
    networkOverrides.push({ name: solana, rpcUrl: env.SVM_RPC_URL });
  }

  const relayAddress = env.X402_SETTLEMENT_CONTRACT;
  if (relayAddress && !/^0x[0-9a-fA-F]{40}$/.test(relayAddress)) problems.push(`X402_SETTLEMENT_CONTRACT is not an address: "${relayAddress}"`);
  const relayNetwork = env.SETTLEMENT_NETWORK ?? networks.find((n) => !n.startsWith("solana"));
  if (relayAddress && !relayNetwork) problems.push("X402_SETTLEMENT_CONTRACT needs SETTLEMENT_NETWORK (the EVM network the relay is deployed on)");

  const redisUrl = env.REDIS_URL || (env.REDIS_HOST ? `redis://${env.REDIS_HOST}:${env.REDIS_PORT ?? "6379"}` : undefined);

  const publisher = env.WALRUS_PUBLISHER_URL;
  const walrus = publisher
    ? {
        publisherUrl: publisher,
        // A Walrus daemon serves both on one host; the earlier facilitator's URL may end in /v1/blobs.
        aggregatorUrl: env.WALRUS_AGGREGATOR_URL || publisher.replace(/\/+$/, "").replace(/\/v1\/blobs$/, ""),
        epochs: int("WALRUS_EPOCHS", 53, 1),
        permanent: env.WALRUS_PERMANENT !== "false",
      }
    : undefined;

  const teeKeys: Record<string, `0x${string}`> = {};
  for (const pair of list("TEE_KEYS")) {
    const [teeId, address] = pair.split("=");
    if (!teeId || !/^0x[0-9a-fA-F]{64}$/.test(teeId) || !address || !/^0x[0-9a-fA-F]{40}$/.test(address)) {
      problems.push(`TEE_KEYS entry "${pair}" must be <bytes32 teeId>=<address>`);
    } else teeKeys[teeId.toLowerCase()] = address as `0x${string}`;
  }

  const production = isProduction(env);
  const receiptTimeoutMs = int("SETTLE_RECEIPT_TIMEOUT_MS", 30_000, 1);
  if (receiptTimeoutMs >= 90_000) problems.push("SETTLE_RECEIPT_TIMEOUT_MS must stay below the official clients' 90 s timeout");
  if (production && evmKeys.length === 0 && svmKeys.length === 0) {
    problems.push("no facilitator key: set EVM_PRIVATE_KEY(S) and/or SVM_PRIVATE_KEY(S)");
  }
  if (production && relayAddress && !relayerKey && evmKeys.length === 0) problems.push("X402_SETTLEMENT_CONTRACT is set but no RELAYER_PRIVATE_KEY (or EVM key) can call it");

  const config: Config = {
    mode: production ? "production" : "embedded",
    host: env.HOST ?? (production ? "0.0.0.0" : "127.0.0.1"),
    port: int("PORT", production ? 3000 : 4020),
    logLevel: env.LOG_LEVEL ?? "info",
    networks,
    networkOverrides,
    evmKeys: evmKeys as `0x${string}`[],
    svmKeys,
    relayerKey: relayerKey as `0x${string}` | undefined,
    relay: relayAddress && relayNetwork ? { network: relayNetwork, address: relayAddress as `0x${string}` } : undefined,
    redisUrl,
    dataDir: env.DATA_DIR ?? ".data",
    receiptTimeoutMs,
    batchSize: int("SETTLEMENT_BATCH_SIZE", 20, 1),
    batchTimeoutMs: int("SETTLEMENT_BATCH_TIMEOUT", 60_000, 1),
    walrus,
    apiKeys: secretList("API_KEYS"),
    inferenceApiKeys: secretList("INFERENCE_API_KEYS"),
    teeKeys,
    requireTeeSignature: env.REQUIRE_TEE_SIGNATURE === "true",
    rateLimitPerMinute: int("RATE_LIMIT_PER_MINUTE", 0),
    runWorker: env.RUN_WORKER !== "false",
    minSignerBalanceWei: wei("MIN_SIGNER_BALANCE_WEI", 10n ** 15n),
  };
  if (problems.length) throw new ConfigError(problems);
  return config;
}
