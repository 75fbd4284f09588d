/**
 * Start-up checks of an EVM network's configuration against its chain: the RPC serves the configured
 * chain, the asset is a contract, and the token's EIP-712 domain and decimals are the configured ones.
 * A wrong value here means every payment on the network fails signature checks (or moves the wrong
 * amount), so production refuses to start on errors. Messages name the network and both values, never
 * the RPC URL (it may hold an API key).
 */
import { BaseError, createPublicClient, http, isAddress, parseAbi, type Address, type PublicClient } from "viem";
import type { NetworkInfo } from "@facilitator/core";

export type StartupCheck = "rpc" | "chainId" | "assetCode" | "domainName" | "domainVersion" | "decimals";

export interface StartupProblem {
  network: string;
  check: StartupCheck;
  /** "error": payments on this network would fail or be wrong. "warning": could not be confirmed. */
  severity: "error" | "warning";
  expected?: string;
  actual?: string;
  message: string;
}

export interface EvmNetworkCheckOptions {
  network: NetworkInfo;
  /** Defaults to the network's configured RPC URL. */
  rpcUrl?: string;
  /** Per RPC request; default 10 s. */
  timeoutMs?: number;
}

const TOKEN_ABI = parseAbi([
  // ERC-5267
  "function eip712Domain() view returns (bytes1 fields, string name, string version, uint256 chainId, address verifyingContract, bytes32 salt, uint256[] extensions)",
  "function name() view returns (string)",
  "function version() view returns (string)",
  "function decimals() view returns (uint8)",
]);

/** Every problem found with one EVM network's configuration; empty when chain and configuration agree. */
export async function checkEvmNetwork(opts: EvmNetworkCheckOptions): Promise<StartupProblem[]> {
  const n = opts.network;
  const client = createPublicClient({ transport: http(opts.rpcUrl ?? n.rpcUrl, { timeout: opts.timeoutMs ?? 10_000, retryCount: 1 }) });
  const problems: StartupProblem[] = [];
  const problem = (check: StartupCheck, message: string, expected?: unknown, actual?: unknown, severity: StartupProblem["severity"] = "error") =>
    problems.push({ network: n.name, check, severity, expected: expected === undefined ? undefined : String(expected), actual: actual === undefined ? undefined : String(actual), message });

  let chainId: number;
  try {
    chainId = await client.getChainId();
  } catch (e) {
    problem("rpc", `${n.name}: the RPC does not answer eth_chainId (${short(e)}); nothing about this network could be checked`);
    return problems;
  }
  if (n.chainId !== undefined && chainId !== n.chainId) {
    problem("chainId", `${n.name}: the RPC serves chain id ${chainId}, but ${n.name} is configured with chain id ${n.chainId}`, n.chainId, chainId);
  }

  const asset = n.asset.address;
  if (!isAddress(asset)) {
    problem("assetCode", `${n.name}: asset "${asset}" is not an EVM address`, "an address", asset);
    return problems;
  }
  let code: string | undefined;
  try {
    code = await client.getCode({ address: asset });
  } catch (e) {
    problem("rpc", `${n.name}: the RPC does not answer eth_getCode (${short(e)}); the asset could not be checked`);
    return problems;
  }
  if (!code || code === "0x") {
    problem("assetCode", `${n.name}: asset ${asset} has no contract code on chain ${chainId} (wrong address, or the RPC serves another chain)`, "contract code", "none");
    return problems; // nothing else to read from an address without code
  }

  const [domain, decimals] = await Promise.all([readDomain(client, asset), read(client, asset, "decimals")]);
  if (n.asset.name !== undefined) {
    if (domain.name === undefined) {
      problem("domainName", `${n.name}: token ${asset} answers neither eip712Domain() nor name(); cannot confirm the configured EIP-712 name "${n.asset.name}"`, n.asset.name, undefined, "warning");
    } else if (domain.name !== n.asset.name) {
      problem("domainName", `${n.name}: token ${asset} has EIP-712 domain name "${domain.name}" on chain, but "${n.asset.name}" is configured; payment signatures would not verify`, n.asset.name, domain.name);
    }
  }
  if (n.asset.version !== undefined) {
    if (domain.version === undefined) {
      problem("domainVersion", `${n.name}: token ${asset} answers neither eip712Domain() nor version(); cannot confirm the configured EIP-712 version "${n.asset.version}"`, n.asset.version, undefined, "warning");
    } else if (domain.version !== n.asset.version) {
      problem("domainVersion", `${n.name}: token ${asset} has EIP-712 domain version "${domain.version}" on chain, but "${n.asset.version}" is configured; payment signatures would not verify`, n.asset.version, domain.version);
    }
  }
  if (decimals === undefined) {
    problem("decimals", `${n.name}: token ${asset} does not answer decimals(); cannot confirm the configured ${n.asset.decimals}`, n.asset.decimals, undefined, "warning");
  } else if (Number(decimals) !== n.asset.decimals) {
    problem("decimals", `${n.name}: token ${asset} has ${decimals} decimals on chain, but ${n.asset.decimals} are configured; amounts would be off by a factor of 10^${Math.abs(Number(decimals) - n.asset.decimals)}`, n.asset.decimals, decimals);
  }
  return problems;
}

/** Checks every EVM network of the list at once (others are skipped) and returns all problems together. */
export async function checkEvmNetworks(networks: readonly NetworkInfo[], opts: { timeoutMs?: number } = {}): Promise<StartupProblem[]> {
  const evm = networks.filter((n) => n.family === "evm");
  return (await Promise.all(evm.map((network) => checkEvmNetwork({ network, timeoutMs: opts.timeoutMs })))).flat();
}

/** ERC-5267 `eip712Domain()` where the token has it (OpenZeppelin EIP712), else `name()` and `version()` (USDC's FiatToken). */
async function readDomain(client: PublicClient, token: Address): Promise<{ name?: string; version?: string }> {
  const domain = await read(client, token, "eip712Domain");
  if (domain) {
    const [fields, name, version] = domain as readonly [`0x${string}`, string, string, ...unknown[]];
    const bits = Number.parseInt(fields.slice(2), 16);
    // Bit 0 and bit 1 say whether the domain uses name and version at all.
    return { name: bits & 1 ? name : "", version: bits & 2 ? version : "" };
  }
  const [name, version] = await Promise.all([read(client, token, "name"), read(client, token, "version")]);
  return { name: name as string | undefined, version: version as string | undefined };
}

/** A view call, or undefined when the token does not have (or reverts) the function. */
function read(client: PublicClient, address: Address, functionName: "eip712Domain" | "name" | "version" | "decimals"): Promise<unknown> {
  return client.readContract({ address, abi: TOKEN_ABI, functionName }).catch(() => undefined);
}

/** viem's short message: its long one includes the request URL. */
function short(e: unknown): string {
  return e instanceof BaseError ? e.shortMessage : (e as Error)?.message ?? String(e);
}

/** All problems as one block of text, for the log or the process's exit message. */
export function formatStartupProblems(problems: readonly StartupProblem[]): string {
  return problems.map((p) => `  - [${p.severity}] ${p.message}`).join("\n");
}
