/**
 * Where the CLI's settings come from: flags first, then the environment; `.devnet/devnet.json`
 * (written by `pnpm start`) only when no trusted setting was given at all, so the auditor works
 * against the local world with no flags, and an auditor who names one thing it trusts (a relay, an
 * RPC, a registry, a root, a key) is never handed the rest from a file it did not name. Every setting
 * records where it came from (`sources`). Resolution is pure; reading files is the caller's (`read`).
 */
import { getAddress, isAddress, isHex, type Address } from "viem";
import { AWS_NITRO_ROOT_PEM, rootFingerprint } from "@facilitator/tee";
import { BLOB_ID_CHECKS, type BlobIdCheck } from "./blob-id.ts";
import { UsageError } from "./errors.ts";
import type { TeeKeys } from "./formats.ts";

export type SettingSource = "flag" | "env" | "devnet.json" | "default";

export interface ResolvedConfig {
  rpcUrl: string;
  chainId?: number;
  relayAddress: Address;
  aggregatorUrl: string;
  teeKeys: TeeKeys;
  /** The TEERegistry whose attested enclaves are trusted (on the relay's chain). */
  teeRegistry?: Address;
  /** PEM roots attestation documents must chain to (default: the AWS Nitro root). */
  attestationRoots: string[];
  /** Less than "attested by an approved enclave" fails (default: on when a registry is configured). */
  requireAttested: boolean;
  blobIdCheck: BlobIdCheck;
  fromBlock: bigint;
  /** The facilitator, for `--record-id` (its proof API is only a hint). */
  facilitatorUrl?: string;
  /** Where each setting came from, for the report's header. */
  sources: Record<string, SettingSource>;
  /** Why devnet.json was not read although present (a trusted setting was given explicitly). */
  devnetIgnored?: string;
}

export interface ConfigFlags {
  rpc?: string;
  chainId?: string;
  relay?: string;
  aggregator?: string;
  teeKey?: string[];
  teeRegistry?: string;
  /** Paths of PEM files. */
  attestationRoot?: string[];
  requireAttested?: string;
  checkBlobId?: string;
  fromBlock?: string;
  facilitator?: string;
}

/** The parts of `.devnet/devnet.json` the auditor reads. */
export interface DevnetView {
  facilitatorUrl?: string;
  networks?: Record<string, { rpcUrl?: string; chainId?: number }>;
  settlementRelay?: { network: string; address: string };
  walrus?: { aggregatorUrl?: string };
  tee?: { teeId?: string; address?: string };
  teeRegistry?: { address?: string; attestationRootPem?: string };
}

/** Flags, environment or devnet.json leave a setting missing or malformed (one line per problem); the CLI prints its usage after it. */
export class ConfigProblem extends UsageError {}

type Env = Record<string, string | undefined>;

/** The trusted settings, each by its flags and environment variables: naming any of them turns devnet.json off. */
function explicitTrusted(flags: ConfigFlags, env: Env): string[] {
  const given: [string, unknown][] = [
    ["--rpc", flags.rpc], ["--chain-id", flags.chainId], ["--relay", flags.relay], ["--aggregator", flags.aggregator],
    ["--tee-key", flags.teeKey?.length], ["--tee-registry", flags.teeRegistry], ["--attestation-root", flags.attestationRoot?.length],
    ["AUDIT_RPC_URL", env.AUDIT_RPC_URL], ["AUDIT_CHAIN_ID", env.AUDIT_CHAIN_ID], ["AUDIT_RELAY", env.AUDIT_RELAY],
    ["X402_SETTLEMENT_CONTRACT", env.X402_SETTLEMENT_CONTRACT], ["AUDIT_AGGREGATOR_URL", env.AUDIT_AGGREGATOR_URL],
    ["WALRUS_AGGREGATOR_URL", env.WALRUS_AGGREGATOR_URL], ["TEE_KEYS", env.TEE_KEYS], ["AUDIT_TEE_REGISTRY", env.AUDIT_TEE_REGISTRY],
    ["TEE_REGISTRY_ADDRESS", env.TEE_REGISTRY_ADDRESS], ["AUDIT_ATTESTATION_ROOTS", env.AUDIT_ATTESTATION_ROOTS], ["TEE_ATTESTATION_ROOTS", env.TEE_ATTESTATION_ROOTS],
  ];
  return given.filter(([, v]) => v !== undefined && v !== "" && v !== 0).map(([name]) => name);
}

const noRead = (path: string): string => {
  throw new Error(`cannot read ${path}`);
};

export function resolveConfig(flags: ConfigFlags, env: Env, devnetFile: DevnetView | undefined, read: (path: string) => string = noRead): ResolvedConfig {
  const problems: string[] = [];
  const sources: ResolvedConfig["sources"] = {};
  const explicit = explicitTrusted(flags, env);
  const devnet = explicit.length ? undefined : devnetFile;
  const devnetIgnored = devnetFile && explicit.length ? `devnet.json is not used: ${explicit.join(", ")} given explicitly (give every trusted setting, or none)` : undefined;
  const hint = devnetIgnored ? ` (${devnetIgnored})` : "";
  const pick = <T>(name: string, ...candidates: [SettingSource, T | undefined][]): T | undefined => {
    for (const [source, value] of candidates) {
      if (value !== undefined && value !== "") {
        sources[name] = source;
        return value;
      }
    }
    return undefined;
  };
  const relayNet = devnet?.settlementRelay ? devnet.networks?.[devnet.settlementRelay.network] : undefined;

  const rpcUrl = pick("rpc", ["flag", flags.rpc], ["env", env.AUDIT_RPC_URL], ["devnet.json", relayNet?.rpcUrl]);
  if (!rpcUrl) problems.push(`no RPC URL: pass --rpc URL or set AUDIT_RPC_URL${hint}`);

  const relay = pick("relay", ["flag", flags.relay], ["env", env.AUDIT_RELAY ?? env.X402_SETTLEMENT_CONTRACT], ["devnet.json", devnet?.settlementRelay?.address]);
  if (!relay) problems.push(`no relay address: pass --relay 0x... or set AUDIT_RELAY${hint}`);
  else if (!isAddress(relay, { strict: false })) problems.push(`relay "${relay}" is not an address`);

  const aggregatorUrl = pick(
    "aggregator",
    ["flag", flags.aggregator],
    ["env", env.AUDIT_AGGREGATOR_URL ?? env.WALRUS_AGGREGATOR_URL],
    ["devnet.json", devnet?.walrus?.aggregatorUrl],
  );
  if (!aggregatorUrl) problems.push(`no aggregator URL: pass --aggregator URL or set AUDIT_AGGREGATOR_URL${hint}`);

  const chainIdRaw = pick<string | number>("chainId", ["flag", flags.chainId], ["env", env.AUDIT_CHAIN_ID], ["devnet.json", relayNet?.chainId]);
  const chainId = chainIdRaw === undefined ? undefined : Number(chainIdRaw);
  if (chainId !== undefined && (!Number.isInteger(chainId) || chainId <= 0)) problems.push(`chain id "${chainIdRaw}" is not a positive integer`);

  // A local aggregator has local blob ids; anything else is taken to be real Walrus.
  const blobIdCheck = pick<string>(
    "checkBlobId",
    ["flag", flags.checkBlobId],
    ["env", env.AUDIT_CHECK_BLOB_ID],
    ["devnet.json", sources.aggregator === "devnet.json" ? "local" : undefined],
    ["default", "walrus"],
  )!;
  if (!BLOB_ID_CHECKS.includes(blobIdCheck as BlobIdCheck)) problems.push(`--check-blob-id must be one of ${BLOB_ID_CHECKS.join(", ")}, got "${blobIdCheck}"`);

  const fromRaw = pick("fromBlock", ["flag", flags.fromBlock], ["env", env.AUDIT_FROM_BLOCK], ["default", "0"])!;
  let fromBlock = 0n;
  if (!/^\d+$/.test(fromRaw)) problems.push(`from block "${fromRaw}" is not a block number`);
  else fromBlock = BigInt(fromRaw);

  const teeKeys: TeeKeys = {};
  const teeSource: [SettingSource, string[]] | undefined = flags.teeKey?.length
    ? ["flag", flags.teeKey]
    : env.TEE_KEYS
      ? ["env", env.TEE_KEYS.split(",").map((s) => s.trim()).filter(Boolean)]
      : devnet?.tee?.teeId && devnet.tee.address
        ? ["devnet.json", [`${devnet.tee.teeId}=${devnet.tee.address}`]]
        : undefined;
  if (teeSource) {
    sources.teeKeys = teeSource[0];
    for (const pair of teeSource[1]) {
      const parsed = parseTeeKey(pair);
      if (typeof parsed === "string") problems.push(parsed);
      else teeKeys[parsed.teeId] = parsed.address;
    }
  }

  const teeRegistry = pick("teeRegistry", ["flag", flags.teeRegistry], ["env", env.AUDIT_TEE_REGISTRY ?? env.TEE_REGISTRY_ADDRESS], ["devnet.json", devnet?.teeRegistry?.address]);
  if (teeRegistry !== undefined && !isAddress(teeRegistry, { strict: false })) problems.push(`TEE registry "${teeRegistry}" is not an address`);
  const attestationRoots = resolveRoots(flags, env, devnet, read, sources, problems);

  const requireRaw = pick("requireAttested", ["flag", flags.requireAttested], ["env", env.AUDIT_REQUIRE_ATTESTED], ["default", teeRegistry ? "true" : "false"])!;
  if (requireRaw !== "true" && requireRaw !== "false") problems.push(`--require-attested must be true or false, got "${requireRaw}"`);
  if (requireRaw === "true" && !teeRegistry) problems.push("--require-attested true needs a TEE registry (--tee-registry 0x... or AUDIT_TEE_REGISTRY)");

  const facilitatorUrl = pick("facilitator", ["flag", flags.facilitator], ["env", env.AUDIT_FACILITATOR_URL], ["devnet.json", devnet?.facilitatorUrl]);

  if (problems.length) throw new ConfigProblem(problems.join("\n"));
  return {
    rpcUrl: rpcUrl!,
    chainId,
    relayAddress: getAddress(relay!),
    aggregatorUrl: aggregatorUrl!,
    teeKeys,
    ...(teeRegistry ? { teeRegistry: getAddress(teeRegistry) } : {}),
    attestationRoots,
    requireAttested: requireRaw === "true",
    blobIdCheck: blobIdCheck as BlobIdCheck,
    fromBlock,
    facilitatorUrl,
    sources,
    ...(devnetIgnored ? { devnetIgnored } : {}),
  };
}

/** The attestation roots: PEM files from flags or the environment, the local world's test root, or AWS's. */
function resolveRoots(flags: ConfigFlags, env: Env, devnet: DevnetView | undefined, read: (path: string) => string, sources: ResolvedConfig["sources"], problems: string[]): string[] {
  const paths: [SettingSource, string[]] | undefined = flags.attestationRoot?.length
    ? ["flag", flags.attestationRoot]
    : (env.AUDIT_ATTESTATION_ROOTS ?? env.TEE_ATTESTATION_ROOTS)
      ? ["env", (env.AUDIT_ATTESTATION_ROOTS ?? env.TEE_ATTESTATION_ROOTS)!.split(",").map((p) => p.trim()).filter(Boolean)]
      : undefined;
  if (!paths) {
    const local = devnet?.teeRegistry?.attestationRootPem;
    sources.attestationRoots = local ? "devnet.json" : "default";
    return [local ?? AWS_NITRO_ROOT_PEM];
  }
  sources.attestationRoots = paths[0];
  const roots: string[] = [];
  for (const path of paths[1]) {
    try {
      const pem = read(path);
      rootFingerprint(pem);
      roots.push(pem);
    } catch (e) {
      problems.push(`attestation root ${path}: ${(e as Error).message.startsWith("cannot read") ? "cannot be read" : "is not a PEM certificate"}`);
    }
  }
  return roots;
}

/** `teeId=address` (teeId as 32-byte hex). */
export function parseTeeKey(pair: string): { teeId: string; address: Address } | string {
  const [teeId, address, extra] = pair.split("=");
  if (extra !== undefined || !teeId || !isHex(teeId, { strict: true }) || teeId.length !== 66 || !address || !isAddress(address, { strict: false })) {
    return `TEE key "${pair}" must be <32-byte hex teeId>=<address>`;
  }
  return { teeId: teeId.toLowerCase(), address: getAddress(address) };
}

/** The trusted settings and where each came from, one line each (the CLI prints them above a report). */
export function describeSettings(c: ResolvedConfig): string[] {
  const from = (name: string) => c.sources[name] ?? "default";
  const lines = [
    `relay ${c.relayAddress} (${from("relay")}), rpc ${c.rpcUrl} (${from("rpc")})${c.chainId ? `, chain ${c.chainId} (${from("chainId")})` : ""}`,
    `aggregator ${c.aggregatorUrl} (${from("aggregator")}), blob ids checked as ${c.blobIdCheck} (${from("checkBlobId")})`,
    `TEE keys: ${Object.keys(c.teeKeys).length} (${c.sources.teeKeys ?? "none given"})`,
    `TEE registry ${c.teeRegistry ?? "none"}${c.teeRegistry ? ` (${from("teeRegistry")})` : ""}; attestation roots: ${c.attestationRoots.map((r) => `sha256 ${rootFingerprint(r).slice(0, 16)}…`).join(", ")} (${from("attestationRoots")}); attestation required: ${c.requireAttested} (${from("requireAttested")})`,
  ];
  if (c.devnetIgnored) lines.push(c.devnetIgnored);
  return lines;
}
