/**
 * Configuration from the environment. Any production variable switches the embedded local world off;
 * every problem is reported at once, before the server listens. Keys come from the environment or
 * from files (`*_FILE`) and never reach a log.
 */
import { readFileSync } from "node:fs";
import { BUILTIN_NETWORKS, DEFAULT_LEASE_MS, FacilitatorError, NetworkConfigError, NetworkRegistry, type NetworkOverride } from "@facilitator/core";
import { parseRedisUrl, type Replication } from "@facilitator/redis";
import { DEFAULT_MAX_COMPUTE_UNITS, DEFAULT_MAX_PRIORITY_FEE_LAMPORTS, MAX_TRANSACTION_COMPUTE_UNITS } from "@facilitator/svm";
import { parseTrustProxy } from "./ops/trust-proxy.ts";
import { loadPaymentsConfig, type PaymentsConfig } from "./payments/config.ts";
import { loadTeeConfig, type TeeConfig } from "./tee-config.ts";

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
  /** Solana: most compute units a payment's SetComputeUnitLimit may ask for (SVM_MAX_COMPUTE_UNITS). */
  svmMaxComputeUnits: number;
  /** Solana: most priority fee, units x price / 1e6 in lamports, a payment may cost the fee payer (SVM_MAX_PRIORITY_FEE_LAMPORTS). */
  svmMaxPriorityFeeLamports: number;
  relayerKey?: `0x${string}`;
  relay?: { network: string; address: `0x${string}` };
  /** REDIS_URL: one Redis, or a Redis Cluster (`redis+cluster://host:port,host:port`, see @facilitator/redis). */
  redisUrl?: string;
  /** REDIS_WAIT_REPLICAS: a Redis write counts as done once this many replicas hold it (WAIT); 0 does not wait. */
  redisWaitReplicas: number;
  dataDir: string;
  /** How long finished ledger entries are kept (ms); undefined keeps them for good. */
  ledgerRetentionMs?: number;
  receiptTimeoutMs: number;
  /** Lease of a settle in progress in the ledger, renewed while it works; a crashed process's payments free up after it. */
  settleLeaseMs: number;
  /** A broadcast settlement nobody came back for is settled again after this long (ms); 0: never. */
  reconcileAfterMs: number;
  batchSize: number;
  batchTimeoutMs: number;
  /** SETTLEMENT_BATCHES_IN_FLIGHT: batches each worker builds and anchors at the same time; unset: the inference package's default. */
  batchesInFlight?: number;
  /** SETTLEMENT_QUEUE_PARTITIONS: the Redis queue's partitions, each under a hash tag of its own (fixed for a deployment's life). */
  queuePartitions: number;
  /** Batches of more records are stored as compact dumps (SETTLEMENT_COMPACT_DUMP_ABOVE); unset: the inference package's default. */
  compactDumpAbove?: number;
  /** A relay transaction pending this long and paying less than the chain now asks is replaced with higher fees (ms). */
  relayReplaceAfterMs: number;
  walrus?: { publisherUrl: string; aggregatorUrl: string; epochs: number; permanent: boolean };
  apiKeys: string[];
  inferenceApiKeys: string[];
  teeKeys: Record<string, `0x${string}`>;
  /**
   * Refuse inference records without a registered TEE's signature, whoever posts them. Unset: true when
   * `teeKeys` registers a TEE or a TEE registry is configured (an explicit false lets key-authenticated
   * callers post unsigned records).
   */
  requireTeeSignature?: boolean;
  /** Trusted TEEs: the TEERegistry, attestation roots, operator key, heartbeat relay (tee-config.ts). */
  tee: TeeConfig;
  rateLimitPerMinute: number;
  runWorker: boolean;
  /** /ready fails while an EVM settlement signer holds less gas money than this (wei). */
  minSignerBalanceWei: bigint;
  /** Most gas one EVM settlement transaction may need; more is refused before anything is signed. */
  settleMaxGas: bigint;
  /** Most wei per gas an EVM settlement transaction may pay; while the chain asks more, settles are refused. */
  settleMaxFeePerGasWei: bigint;
  /** A contract payer (ERC-1271) is refused this long (ms) after one of its settlements reverted on chain; 0: never. */
  contractPayerCooloffMs: number;
  /** Factories an EIP-6492 signature may deploy its wallet through, on our gas (EIP6492_ALLOWED_FACTORIES). */
  eip6492Factories: string[];
  /** Most gas the deployment of an EIP-6492 wallet may need (EIP6492_MAX_DEPLOY_GAS). */
  eip6492MaxDeployGas: bigint;
  /** Most wei given to a payer for its approve(Permit2) transaction's gas; 0 turns erc20ApprovalGasSponsoring off. */
  approvalFundingMaxWei: bigint;
  /** A payer is given such gas money at most once in this long (ms). */
  approvalFundingCooloffMs: number;
  /** The block the relay was deployed at: the explorer's scans start there (SETTLEMENT_RELAY_FROM_BLOCK). */
  relayFromBlock?: bigint;
  /** Express's `trust proxy`: false (default, req.ip is the peer), a hop count, or proxy addresses/CIDRs. */
  trustProxy: false | number | string[];
  /** Serve /metrics on this port instead of the API port. */
  metricsPort?: number;
  /** When set, /metrics asks for `Authorization: Bearer <key>`. */
  metricsApiKey?: string;
  /** Requests per client per minute on /explorer (0: no limit). */
  explorerRateLimitPerMinute: number;
  /** The bazaar discovery catalogue (BAZAAR_*): off, or its freshness and quotas. */
  bazaar: { enabled: boolean; ttlMs: number; maxRoutesPerPayTo: number; maxRoutesPerPayer: number; maxResources: number };
  /** The payments record and its outcome webhooks (PAYMENTS_*, WEBHOOK*). */
  payments: PaymentsConfig;
}

/** Every problem of the configuration, found at once: `invalid configuration:` and one `  - ` line each. */
export class ConfigError extends FacilitatorError {
  constructor(readonly problems: string[]) {
    super("invalid configuration", { metaMessages: problems.map((p) => `  - ${p}`) });
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

/** pino's levels. */
const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
/** Transfer methods the EVM mechanism settles with. */
const EVM_TRANSFER_METHODS = ["eip3009", "permit"];
const DAY_MS = 24 * 60 * 60 * 1000;
const EVM_KEY = /^0x[0-9a-fA-F]{64}$/;
const SVM_KEY = /^[1-9A-HJ-NP-Za-km-z]{64,90}$/;

/**
 * Reads and checks the configuration. Each problem is one line that starts with the variable it is
 * about and says what is wrong and what would be right; a secret's value is never quoted.
 */
export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = [];
  const int = (name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number => {
    const raw = env[name];
    if (raw === undefined || raw === "") return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${name}: must be an integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`}, got "${raw}"`);
    }
    return n;
  };
  const wei = (name: string, fallback: bigint, unit = "wei", min = 0n): bigint => {
    const raw = env[name];
    if (raw === undefined || raw === "") return fallback;
    if (/^\d+$/.test(raw) && BigInt(raw) >= min) return BigInt(raw);
    problems.push(`${name}: must be a whole number of ${unit}${min ? ` of at least ${min}` : ""}, got "${raw}"`);
    return fallback;
  };
  const bool = (name: string, fallback: boolean): boolean => {
    const raw = (env[name] ?? "").trim().toLowerCase();
    if (raw === "") return fallback;
    if (raw === "true" || raw === "false") return raw === "true";
    problems.push(`${name}: must be true or false, got "${env[name]}"`);
    return fallback;
  };
  /** URLs often carry a password or an API key: a bad one is named, never quoted. */
  const url = (name: string, value: string | undefined, protocols: readonly string[]): string | undefined => {
    if (!value) return undefined;
    if (URL.canParse(value) && protocols.includes(new URL(value).protocol)) return value;
    problems.push(`${name}: not a ${protocols.map((p) => `${p}//`).join(" or ")} URL (value not shown)`);
    return undefined;
  };
  /** REDIS_URL's own rules (parseRedisUrl); its messages never quote the password. */
  const redis = (value: string): string | undefined => {
    try {
      parseRedisUrl(value);
      return value;
    } catch (e) {
      problems.push(`REDIS_URL: ${(e as Error).message} (value not shown)`);
      return undefined;
    }
  };
  const list = (name: string): string[] => (env[name] ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  /** A list from `<name>_FILE` when set, else from `<name>`; each value tagged with the variable it came from. */
  const secretList = (name: string): { from: string; values: string[] } => {
    const fromFile = env[`${name}_FILE`];
    if (!fromFile) return { from: name, values: list(name) };
    try {
      return { from: `${name}_FILE`, values: readFileSync(fromFile, "utf8").split(/[\s,]+/).filter(Boolean) };
    } catch {
      problems.push(`${name}_FILE: points at ${fromFile}, which cannot be read`);
      return { from: `${name}_FILE`, values: [] };
    }
  };
  const keys = (listName: string, singleName: string, shape: RegExp, what: string): string[] => {
    const sources = [secretList(listName), { from: singleName, values: list(singleName) }];
    for (const { from, values } of sources) {
      values.forEach((k, i) => {
        if (!shape.test(k)) problems.push(`${from}: key #${i + 1} is not ${what} (value not shown)`);
      });
    }
    return sources.flatMap((s) => s.values);
  };

  const evmKeys = keys("EVM_PRIVATE_KEYS", "EVM_PRIVATE_KEY", EVM_KEY, "32-byte hex with 0x");
  const svmKeys = keys("SVM_PRIVATE_KEYS", "SVM_PRIVATE_KEY", SVM_KEY, "a base58 64-byte secret key");
  const relayerKey = env.RELAYER_PRIVATE_KEY || undefined;
  if (relayerKey && !EVM_KEY.test(relayerKey)) problems.push("RELAYER_PRIVATE_KEY: not 32-byte hex with 0x (value not shown)");

  const networks = list("NETWORKS");
  const networkOverrides = parseOverrides(env.NETWORK_OVERRIDES, problems);
  // Per-network RPC variables, e.g. BASE_SEPOLIA_RPC_URL; SVM_RPC_URL is the earlier facilitator's name.
  const named = new Set([...BUILTIN_NETWORKS.map((n) => n.name), ...networkOverrides.map((o) => o.name)]);
  for (const [key, value] of Object.entries(env)) {
    const m = /^([A-Z0-9_]+)_RPC_URL$/.exec(key);
    if (!m || !value || key === "SVM_RPC_URL") continue;
    const name = m[1]!.toLowerCase().replace(/_/g, "-");
    if (!named.has(name)) {
      problems.push(`${key}: no network is named ${name} (an RPC variable is <NAME>_RPC_URL for one of: ${[...named].join(", ")})`);
      continue;
    }
    const rpcUrl = url(key, value, ["http:", "https:"]);
    if (rpcUrl) networkOverrides.push({ name, rpcUrl });
  }
  const svmRpcUrl = url("SVM_RPC_URL", env.SVM_RPC_URL, ["http:", "https:"]);
  if (svmRpcUrl) networkOverrides.push({ name: networks.find((n) => n.startsWith("solana")) ?? "solana-devnet", rpcUrl: svmRpcUrl });

  const relayAddress = env.X402_SETTLEMENT_CONTRACT;
  if (relayAddress && !/^0x[0-9a-fA-F]{40}$/.test(relayAddress)) problems.push(`X402_SETTLEMENT_CONTRACT: not an address, got "${relayAddress}"`);
  const relayNetwork = env.SETTLEMENT_NETWORK ?? networks.find((n) => !n.startsWith("solana"));
  if (relayAddress && !relayNetwork) problems.push("X402_SETTLEMENT_CONTRACT: needs SETTLEMENT_NETWORK (the EVM network the relay is deployed on)");

  const production = isProduction(env);
  const registry = buildRegistry(networkOverrides, problems);
  if (registry) {
    const valid = (family?: string) => registry.networks.filter((n) => !family || n.family === family).map((n) => n.name).join(", ");
    for (const name of networks) {
      const n = registry.resolve(name);
      if (!n) {
        problems.push(`NETWORKS: unknown network "${name}" (valid: ${valid()})`);
        continue;
      }
      if (n.family === "evm" && !EVM_TRANSFER_METHODS.includes(n.asset.transferMethod)) {
        problems.push(`NETWORK_OVERRIDES: network ${n.name} has asset.transferMethod "${n.asset.transferMethod}" (valid: ${EVM_TRANSFER_METHODS.join(", ")})`);
      }
      if (production && n.family === "evm" && evmKeys.length === 0) problems.push(`NETWORKS: ${n.name} is an EVM network, but no EVM_PRIVATE_KEY(S) is set to settle on it`);
      if (production && n.family === "svm" && svmKeys.length === 0) problems.push(`NETWORKS: ${n.name} is a Solana network, but no SVM_PRIVATE_KEY(S) is set to settle on it`);
    }
    if (relayAddress && env.SETTLEMENT_NETWORK && registry.resolve(env.SETTLEMENT_NETWORK)?.family !== "evm") {
      problems.push(`SETTLEMENT_NETWORK: "${env.SETTLEMENT_NETWORK}" is not an EVM network (valid: ${valid("evm")})`);
    }
  }

  const redisUrl = env.REDIS_URL
    ? redis(env.REDIS_URL)
    : env.REDIS_HOST
      ? `redis://${env.REDIS_HOST}:${int("REDIS_PORT", 6379, 1, 65535)}`
      : undefined;

  const publisher = url("WALRUS_PUBLISHER_URL", env.WALRUS_PUBLISHER_URL, ["http:", "https:"]);
  const walrus = publisher
    ? {
        publisherUrl: publisher,
        // A Walrus daemon serves both on one host; the earlier facilitator's URL may end in /v1/blobs.
        aggregatorUrl:
          url("WALRUS_AGGREGATOR_URL", env.WALRUS_AGGREGATOR_URL, ["http:", "https:"]) ?? publisher.replace(/\/+$/, "").replace(/\/v1\/blobs$/, ""),
        epochs: int("WALRUS_EPOCHS", 53, 1),
        permanent: bool("WALRUS_PERMANENT", true),
      }
    : undefined;

  const teeKeys: Record<string, `0x${string}`> = {};
  for (const pair of list("TEE_KEYS")) {
    const [teeId, address] = pair.split("=");
    if (!teeId || !/^0x[0-9a-fA-F]{64}$/.test(teeId) || !address || !/^0x[0-9a-fA-F]{40}$/.test(address)) {
      problems.push(`TEE_KEYS: entry "${pair}" must be <bytes32 teeId>=<address>`);
    } else teeKeys[teeId.toLowerCase()] = address as `0x${string}`;
  }
  const tee = loadTeeConfig(env, problems);
  if (env.REQUIRE_TEE_SIGNATURE?.trim().toLowerCase() === "true" && Object.keys(teeKeys).length === 0 && !tee.registryAddress) {
    problems.push("REQUIRE_TEE_SIGNATURE: true, but neither TEE_KEYS nor TEE_REGISTRY_ADDRESS names a TEE, so every inference record would be refused (set one, or leave REQUIRE_TEE_SIGNATURE unset)");
  }

  const logLevel = env.LOG_LEVEL || "info";
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) problems.push(`LOG_LEVEL: unknown level "${logLevel}" (valid: ${LOG_LEVELS.join(", ")})`);
  const receiptTimeoutMs = int("SETTLE_RECEIPT_TIMEOUT_MS", 30_000, 1);
  if (receiptTimeoutMs >= 90_000) problems.push(`SETTLE_RECEIPT_TIMEOUT_MS: must stay below the official clients' 90 s timeout, got ${receiptTimeoutMs}`);
  if (production && evmKeys.length === 0 && svmKeys.length === 0) {
    problems.push("EVM_PRIVATE_KEY(S), SVM_PRIVATE_KEY(S): no facilitator key is set; a production configuration needs at least one");
  }
  if (production && relayAddress && !relayerKey && evmKeys.length === 0) problems.push("RELAYER_PRIVATE_KEY: X402_SETTLEMENT_CONTRACT is set but no RELAYER_PRIVATE_KEY (or EVM key) can call it");
  const retentionDays = int("LEDGER_RETENTION_DAYS", 7, 0);

  // The explorer reads the relay's events from this block on; from genesis, a real chain costs hundreds of RPC calls.
  const fromBlockRaw = (env.SETTLEMENT_RELAY_FROM_BLOCK ?? "").trim();
  let relayFromBlock: bigint | undefined;
  if (/^\d+$/.test(fromBlockRaw)) relayFromBlock = BigInt(fromBlockRaw);
  else if (fromBlockRaw) problems.push(`SETTLEMENT_RELAY_FROM_BLOCK: must be a block number (a whole number >= 0), got "${fromBlockRaw}"`);
  else if (production && relayAddress && publisher) {
    problems.push("SETTLEMENT_RELAY_FROM_BLOCK: required with X402_SETTLEMENT_CONTRACT and WALRUS_PUBLISHER_URL: the block the relay was deployed at, where the explorer's scans start");
  }
  const trustProxy = parseTrustProxy(env.TRUST_PROXY);
  if (!trustProxy.ok) problems.push(`TRUST_PROXY: ${trustProxy.problem}`);
  const eip6492Factories = (env.EIP6492_ALLOWED_FACTORIES ?? "").split(",").map((f) => f.trim()).filter(Boolean);
  for (const f of eip6492Factories) if (!/^0x[0-9a-fA-F]{40}$/.test(f)) problems.push(`EIP6492_ALLOWED_FACTORIES: "${f}" is not an address`);
  const metricsPort = env.METRICS_PORT ? int("METRICS_PORT", 0, 0, 65535) : undefined;
  const metricsApiKey = secretList("METRICS_API_KEY").values[0];
  const payments = loadPaymentsConfig(env, { int, bool, list, production, problems });

  const redisWaitReplicas = int("REDIS_WAIT_REPLICAS", 0, 0, 16);
  const queuePartitions = int("SETTLEMENT_QUEUE_PARTITIONS", 1, 1, 64);
  if (!redisUrl && redisWaitReplicas > 0) problems.push("REDIS_WAIT_REPLICAS: waits for Redis replicas, but no REDIS_URL is set");
  if (!redisUrl && queuePartitions > 1) problems.push("SETTLEMENT_QUEUE_PARTITIONS: partitions the Redis queue, but no REDIS_URL is set (the embedded queue is one file)");

  const apiKeys = secretList("API_KEYS").values;
  const inferenceApiKeys = secretList("INFERENCE_API_KEYS").values;
  const config: Config = {
    mode: production ? "production" : "embedded",
    host: env.HOST || (production ? "0.0.0.0" : "127.0.0.1"),
    port: int("PORT", production ? 3000 : 4020, 0, 65535),
    logLevel,
    networks,
    networkOverrides,
    evmKeys: evmKeys as `0x${string}`[],
    svmKeys,
    // Each Solana payment's worst case for the fee payer: 5,000 lamports per signature plus this fee (constants.ts in @facilitator/svm).
    svmMaxComputeUnits: int("SVM_MAX_COMPUTE_UNITS", DEFAULT_MAX_COMPUTE_UNITS, 1, MAX_TRANSACTION_COMPUTE_UNITS),
    svmMaxPriorityFeeLamports: int("SVM_MAX_PRIORITY_FEE_LAMPORTS", DEFAULT_MAX_PRIORITY_FEE_LAMPORTS, 0),
    relayerKey: relayerKey as `0x${string}` | undefined,
    relay: relayAddress && relayNetwork ? { network: relayNetwork, address: relayAddress as `0x${string}` } : undefined,
    redisUrl,
    redisWaitReplicas,
    dataDir: env.DATA_DIR || ".data",
    ledgerRetentionMs: retentionDays > 0 ? retentionDays * DAY_MS : undefined,
    receiptTimeoutMs,
    settleLeaseMs: int("SETTLE_LEASE_MS", DEFAULT_LEASE_MS, 1_000),
    reconcileAfterMs: int("RECONCILE_AFTER_MS", 120_000, 0),
    batchSize: int("SETTLEMENT_BATCH_SIZE", 20, 1),
    batchTimeoutMs: int("SETTLEMENT_BATCH_TIMEOUT", 60_000, 1),
    batchesInFlight: env.SETTLEMENT_BATCHES_IN_FLIGHT ? int("SETTLEMENT_BATCHES_IN_FLIGHT", 0, 1, 64) : undefined,
    queuePartitions,
    compactDumpAbove: env.SETTLEMENT_COMPACT_DUMP_ABOVE ? int("SETTLEMENT_COMPACT_DUMP_ABOVE", 0, 0) : undefined,
    relayReplaceAfterMs: int("SETTLEMENT_REPLACE_AFTER_MS", 60_000, 1_000),
    walrus,
    apiKeys,
    inferenceApiKeys,
    teeKeys,
    // Unset: required when TEE_KEYS registers a TEE (resolved where the pipeline opens, so programmatic configs get the same default).
    requireTeeSignature: env.REQUIRE_TEE_SIGNATURE?.trim() ? bool("REQUIRE_TEE_SIGNATURE", false) : undefined,
    tee,
    rateLimitPerMinute: int("RATE_LIMIT_PER_MINUTE", 0),
    runWorker: bool("RUN_WORKER", true),
    minSignerBalanceWei: wei("MIN_SIGNER_BALANCE_WEI", 10n ** 15n),
    settleMaxGas: wei("SETTLE_MAX_GAS", 300_000n, "gas", 21_000n),
    settleMaxFeePerGasWei: wei("SETTLE_MAX_FEE_PER_GAS_WEI", 100n * 10n ** 9n, "wei", 1n),
    contractPayerCooloffMs: int("CONTRACT_PAYER_REVERT_COOLOFF_SECONDS", 3600, 0) * 1000,
    eip6492Factories,
    eip6492MaxDeployGas: wei("EIP6492_MAX_DEPLOY_GAS", 500_000n, "gas", 21_000n),
    approvalFundingMaxWei: wei("ERC20_APPROVAL_MAX_FUNDING_WEI", 10n ** 15n),
    approvalFundingCooloffMs: int("ERC20_APPROVAL_FUNDING_COOLOFF_SECONDS", 86_400, 0) * 1000,
    relayFromBlock,
    trustProxy: trustProxy.ok ? trustProxy.value : false,
    metricsPort,
    metricsApiKey,
    explorerRateLimitPerMinute: int("EXPLORER_RATE_LIMIT_PER_MINUTE", 120),
    bazaar: {
      enabled: bool("BAZAAR_ENABLED", true),
      // A month: long enough for a service paid now and then, short enough that dead ones leave.
      ttlMs: int("BAZAAR_TTL_SECONDS", 30 * 24 * 3600, 60) * 1000,
      maxRoutesPerPayTo: int("BAZAAR_MAX_ROUTES_PER_PAYTO", 100, 1),
      maxRoutesPerPayer: int("BAZAAR_MAX_ROUTES_PER_PAYER", 100, 1),
      maxResources: int("BAZAAR_MAX_RESOURCES", 10_000, 1),
    },
    payments,
  };
  if (metricsPort && metricsPort === config.port) problems.push(`METRICS_PORT: ${metricsPort} is also PORT; give /metrics a port of its own or leave METRICS_PORT unset`);
  if (problems.length) throw new ConfigError(problems);
  return config;
}

/** How long a Redis write waits for its replicas (REDIS_WAIT_REPLICAS) before it counts as failed. */
export const REDIS_WAIT_TIMEOUT_MS = 2_000;
/** What the Redis stores WAIT for, if anything. */
export function redisReplication(config: Pick<Config, "redisWaitReplicas">): Replication | undefined {
  return config.redisWaitReplicas > 0 ? { replicas: config.redisWaitReplicas, timeoutMs: REDIS_WAIT_TIMEOUT_MS } : undefined;
}

/** NETWORK_OVERRIDES: a JSON array of objects, each naming its network. */
function parseOverrides(raw: string | undefined, problems: string[]): NetworkOverride[] {
  if (!raw) return [];
  const shape = "must be a JSON array of {name, rpcUrl?, chainId?, asset?}";
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (e) {
    problems.push(`NETWORK_OVERRIDES: ${shape}: ${(e as Error).message}`);
    return [];
  }
  if (!Array.isArray(parsed)) {
    problems.push(`NETWORK_OVERRIDES: ${shape}, got ${parsed === null ? "null" : typeof parsed}`);
    return [];
  }
  const good: NetworkOverride[] = [];
  parsed.forEach((o: Partial<NetworkOverride> | null, i) => {
    const problem =
      typeof o !== "object" || o === null || Array.isArray(o) ? "is not an object"
      : typeof o.name !== "string" || !o.name ? "has no name"
      : o.chainId !== undefined && !(Number.isInteger(o.chainId) && o.chainId > 0) ? `(${o.name}) has a chainId that is not a positive integer`
      : o.rpcUrl !== undefined && !(typeof o.rpcUrl === "string" && URL.canParse(o.rpcUrl)) ? `(${o.name}) has an rpcUrl that is not a URL (value not shown)`
      : undefined;
    if (problem) problems.push(`NETWORK_OVERRIDES: entry #${i + 1} ${problem}; each ${shape.replace("must be a JSON array of ", "is ")}`);
    else good.push(o as NetworkOverride);
  });
  return good;
}

function buildRegistry(overrides: readonly NetworkOverride[], problems: string[]): NetworkRegistry | undefined {
  try {
    return new NetworkRegistry(overrides);
  } catch (e) {
    if (!(e instanceof NetworkConfigError)) throw e;
    problems.push(`NETWORK_OVERRIDES: ${e.message}`);
    return undefined;
  }
}
