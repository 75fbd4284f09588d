/**
 * Trusted TEEs' configuration: the TEERegistry the door and the registrar read, the attestation roots
 * registrations are verified against, the operator key of the registration routes, and the
 * heartbeat relay's limits. Part of `loadConfig`: problems are added to its list, one line each,
 * naming the variable; a key's value is never quoted.
 */
import { readFileSync } from "node:fs";
import { AWS_NITRO_ROOT_PEM, rootFingerprint } from "@facilitator/tee";

export interface TeeConfig {
  /** TEE_REGISTRY_ADDRESS: the TEERegistry on SETTLEMENT_NETWORK (the relay's chain). Unset: TEE_KEYS only. */
  registryAddress?: `0x${string}`;
  /** TEE_ATTESTATION_ROOTS (PEM files): the roots registrations must chain to. Default: the AWS Nitro root. */
  attestationRoots: string[];
  /** OPERATOR_API_KEY(_FILE): protects POST /tees and /tees/nonce. Unset: those routes refuse everyone. */
  operatorApiKey?: string;
  /** TEE_HEARTBEAT_MAX_AGE_SECONDS: registry TEEs without a heartbeat this recent are refused at the door. Unset: off. */
  heartbeatMaxAgeSeconds?: number;
  /** TEE_REGISTRY_CACHE_MS: how long the door uses a registry answer (a revocation reaches it at most this late). */
  registryCacheMs: number;
  /** HEARTBEAT_MIN_INTERVAL_SECONDS: one relayed heartbeat per TEE per this many seconds at most. */
  heartbeatMinIntervalSeconds: number;
  /** HEARTBEAT_MAX_GAS: most gas one relayed heartbeat may need. */
  heartbeatMaxGas: bigint;
  /** HEARTBEAT_MAX_FEE_PER_GAS_WEI: no heartbeat is relayed while the chain asks more per gas. */
  heartbeatMaxFeePerGasWei: bigint;
}

type Env = Record<string, string | undefined>;

export function loadTeeConfig(env: Env, problems: string[]): TeeConfig {
  const registryAddress = env.TEE_REGISTRY_ADDRESS?.trim() || undefined;
  if (registryAddress && !/^0x[0-9a-fA-F]{40}$/.test(registryAddress)) problems.push(`TEE_REGISTRY_ADDRESS: not an address, got "${registryAddress}"`);
  if (registryAddress && !env.X402_SETTLEMENT_CONTRACT) problems.push("TEE_REGISTRY_ADDRESS: needs X402_SETTLEMENT_CONTRACT and SETTLEMENT_NETWORK (the registry lives on the relay's chain)");

  const attestationRoots: string[] = [];
  for (const path of (env.TEE_ATTESTATION_ROOTS ?? "").split(",").map((p) => p.trim()).filter(Boolean)) {
    let pem: string;
    try {
      pem = readFileSync(path, "utf8");
    } catch {
      problems.push(`TEE_ATTESTATION_ROOTS: ${path} cannot be read`);
      continue;
    }
    try {
      rootFingerprint(pem);
      attestationRoots.push(pem);
    } catch {
      problems.push(`TEE_ATTESTATION_ROOTS: ${path} is not a PEM certificate`);
    }
  }

  let operatorApiKey = env.OPERATOR_API_KEY?.trim() || undefined;
  if (env.OPERATOR_API_KEY_FILE) {
    try {
      operatorApiKey = readFileSync(env.OPERATOR_API_KEY_FILE, "utf8").trim() || undefined;
    } catch {
      problems.push(`OPERATOR_API_KEY_FILE: points at ${env.OPERATOR_API_KEY_FILE}, which cannot be read`);
    }
  }
  if (operatorApiKey !== undefined && operatorApiKey.length < 16) problems.push("OPERATOR_API_KEY: shorter than 16 characters (value not shown)");

  const int = (name: string, fallback: number, min: number): number => {
    const raw = env[name]?.trim();
    if (!raw) return fallback;
    if (!/^\d+$/.test(raw) || Number(raw) < min) {
      problems.push(`${name}: must be an integer >= ${min}, got "${raw}"`);
      return fallback;
    }
    return Number(raw);
  };
  const big = (name: string, fallback: bigint, min: bigint): bigint => {
    const raw = env[name]?.trim();
    if (!raw) return fallback;
    if (!/^\d+$/.test(raw) || BigInt(raw) < min) {
      problems.push(`${name}: must be a whole number >= ${min}, got "${raw}"`);
      return fallback;
    }
    return BigInt(raw);
  };
  const maxAge = env.TEE_HEARTBEAT_MAX_AGE_SECONDS?.trim();
  return {
    ...(registryAddress ? { registryAddress: registryAddress as `0x${string}` } : {}),
    attestationRoots: attestationRoots.length ? attestationRoots : [AWS_NITRO_ROOT_PEM],
    ...(operatorApiKey ? { operatorApiKey } : {}),
    ...(maxAge ? { heartbeatMaxAgeSeconds: int("TEE_HEARTBEAT_MAX_AGE_SECONDS", 1_800, 1) } : {}),
    registryCacheMs: int("TEE_REGISTRY_CACHE_MS", 5_000, 0),
    heartbeatMinIntervalSeconds: int("HEARTBEAT_MIN_INTERVAL_SECONDS", 60, 0),
    heartbeatMaxGas: big("HEARTBEAT_MAX_GAS", 150_000n, 21_000n),
    heartbeatMaxFeePerGasWei: big("HEARTBEAT_MAX_FEE_PER_GAS_WEI", 100n * 10n ** 9n, 1n),
  };
}
