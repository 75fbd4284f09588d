/**
 * Where the CLI's settings come from: flags first, then the environment, then `.devnet/devnet.json`
 * (written by `pnpm start`), so the auditor works against the local world with no flags at all.
 * Resolution is pure; reading the file is the caller's.
 */
import { getAddress, isAddress, isHex, type Address } from "viem";
import { BLOB_ID_CHECKS, type BlobIdCheck } from "./blob-id.ts";
import { UsageError } from "./errors.ts";
import type { TeeKeys } from "./formats.ts";

export interface ResolvedConfig {
  rpcUrl: string;
  chainId?: number;
  relayAddress: Address;
  aggregatorUrl: string;
  teeKeys: TeeKeys;
  blobIdCheck: BlobIdCheck;
  fromBlock: bigint;
  /** The facilitator, for `--record-id` (its proof API is only a hint). */
  facilitatorUrl?: string;
  /** Where each setting came from, for the report's header. */
  sources: Record<string, "flag" | "env" | "devnet.json" | "default">;
}

export interface ConfigFlags {
  rpc?: string;
  chainId?: string;
  relay?: string;
  aggregator?: string;
  teeKey?: string[];
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
}

/** Flags, environment or devnet.json leave a setting missing or malformed (one line per problem); the CLI prints its usage after it. */
export class ConfigProblem extends UsageError {}

type Env = Record<string, string | undefined>;

export function resolveConfig(flags: ConfigFlags, env: Env, devnet: DevnetView | undefined): ResolvedConfig {
  const problems: string[] = [];
  const sources: ResolvedConfig["sources"] = {};
  const pick = <T>(name: string, ...candidates: [ResolvedConfig["sources"][string], T | undefined][]): T | undefined => {
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
  if (!rpcUrl) problems.push("no RPC URL: pass --rpc URL or set AUDIT_RPC_URL");

  const relay = pick("relay", ["flag", flags.relay], ["env", env.AUDIT_RELAY ?? env.X402_SETTLEMENT_CONTRACT], ["devnet.json", devnet?.settlementRelay?.address]);
  if (!relay) problems.push("no relay address: pass --relay 0x... or set AUDIT_RELAY");
  else if (!isAddress(relay, { strict: false })) problems.push(`relay "${relay}" is not an address`);

  const aggregatorUrl = pick(
    "aggregator",
    ["flag", flags.aggregator],
    ["env", env.AUDIT_AGGREGATOR_URL ?? env.WALRUS_AGGREGATOR_URL],
    ["devnet.json", devnet?.walrus?.aggregatorUrl],
  );
  if (!aggregatorUrl) problems.push("no aggregator URL: pass --aggregator URL or set AUDIT_AGGREGATOR_URL");

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
  const teeSource: [ResolvedConfig["sources"][string], string[]] | undefined = flags.teeKey?.length
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

  const facilitatorUrl = pick("facilitator", ["flag", flags.facilitator], ["env", env.AUDIT_FACILITATOR_URL], ["devnet.json", devnet?.facilitatorUrl]);

  if (problems.length) throw new ConfigProblem(problems.join("\n"));
  return {
    rpcUrl: rpcUrl!,
    chainId,
    relayAddress: getAddress(relay!),
    aggregatorUrl: aggregatorUrl!,
    teeKeys,
    blobIdCheck: blobIdCheck as BlobIdCheck,
    fromBlock,
    facilitatorUrl,
    sources,
  };
}

/** `teeId=address` (teeId as 32-byte hex). */
export function parseTeeKey(pair: string): { teeId: string; address: Address } | string {
  const [teeId, address, extra] = pair.split("=");
  if (extra !== undefined || !teeId || !isHex(teeId, { strict: true }) || teeId.length !== 66 || !address || !isAddress(address, { strict: false })) {
    return `TEE key "${pair}" must be <32-byte hex teeId>=<address>`;
  }
  return { teeId: teeId.toLowerCase(), address: getAddress(address) };
}
