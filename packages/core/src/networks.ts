/** The network registry: v1 names, CAIP-2 ids, chain ids and default assets, overridable by configuration. */
import { FacilitatorError } from "./errors.ts";

export type ChainFamily = "evm" | "svm";
export type TransferMethod = "eip3009" | "permit" | "permit2" | "spl";

export interface AssetInfo {
  address: string;
  decimals: number;
  /** EIP-712 domain name and version of the token (EVM only). */
  name?: string;
  version?: string;
  transferMethod: TransferMethod;
}

export interface NetworkInfo {
  /** v1 name, e.g. `base-sepolia`. */
  name: string;
  /** CAIP-2 id, e.g. `eip155:84532`. */
  caip2: string;
  family: ChainFamily;
  chainId?: number;
  rpcUrl: string;
  asset: AssetInfo;
  /**
   * Assets accepted besides `asset`, settled with the same transfer method. A payment in any other
   * asset is refused before anything is read or signed: an unpinned asset lets a caller point the
   * facilitator's gas at a contract of its choosing.
   */
  extraAssets?: readonly AssetInfo[];
  testnet: boolean;
}

/** The asset of `network` at `address` (the configured one or an extra), or undefined when it is not accepted there. */
export function acceptedAsset(network: NetworkInfo, address: string): AssetInfo | undefined {
  const same = (a: AssetInfo) => (network.family === "evm" ? a.address.toLowerCase() === address.toLowerCase() : a.address === address);
  return [network.asset, ...(network.extraAssets ?? [])].find(same);
}

/** Every asset address `network` accepts, for messages. */
export function acceptedAssetAddresses(network: NetworkInfo): string[] {
  return [network.asset, ...(network.extraAssets ?? [])].map((a) => a.address);
}

const evm = (
  name: string,
  chainId: number,
  rpcUrl: string,
  asset: AssetInfo,
  testnet: boolean,
): NetworkInfo => ({ name, caip2: `eip155:${chainId}`, family: "evm", chainId, rpcUrl, asset, testnet });

const svm = (name: string, genesis: string, rpcUrl: string, mint: string, testnet: boolean): NetworkInfo => ({
  name,
  caip2: `solana:${genesis}`,
  family: "svm",
  rpcUrl,
  asset: { address: mint, decimals: 6, transferMethod: "spl" },
  testnet,
});

export const BUILTIN_NETWORKS: readonly NetworkInfo[] = [
  evm("base", 8453, "https://mainnet.base.org", { address: "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", decimals: 6, name: "USD Coin", version: "2", transferMethod: "eip3009" }, false),
  evm("base-sepolia", 84532, "https://sepolia.base.org", { address: "0x036CbD53842c5426634e7929541eC2318f3dCF7e", decimals: 6, name: "USDC", version: "2", transferMethod: "eip3009" }, true),
  evm("megaeth", 4326, "https://mainnet.megaeth.com/rpc", { address: "0xFAfDdbb3FC7688494971a79cc65DCa3EF82079E7", decimals: 18, name: "MegaUSD", version: "1", transferMethod: "permit" }, false),
  evm("megaeth-testnet", 6343, "https://carrot.megaeth.com/rpc", { address: "0x72d4db19E3AE6f8ed47B5337ab00D69685277cF4", decimals: 18, name: "MegaUSD", version: "1", transferMethod: "permit" }, true),
  evm("og-devnet", 10744, "https://eth-devnet.opengradient.ai/", { address: "0x48515A4b24f17cadcD6109a9D85a57ba55a619a6", decimals: 6, name: "OUSDC", version: "2", transferMethod: "eip3009" }, true),
  evm("og-evm", 10740, "https://ogevmdevnet.opengradient.ai/", { address: "0x094E464A23B90A71a0894D5D1e5D470FfDD074e1", decimals: 6, name: "OUSDC", version: "2", transferMethod: "eip3009" }, true),
  svm("solana", "5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp", "https://api.mainnet-beta.solana.com", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", false),
  svm("solana-devnet", "EtWTRABZaYq6iMfeYKouRu166VU2xqa1", "https://api.devnet.solana.com", "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU", true),
];

/** A configuration entry: changes a built-in network, or adds an EVM network when `name` is new. */
export interface NetworkOverride {
  name: string;
  chainId?: number;
  caip2?: string;
  rpcUrl?: string;
  asset?: Partial<AssetInfo>;
  /** More accepted assets (each with its address and decimals; EVM ones with their EIP-712 name and version). */
  extraAssets?: readonly Omit<AssetInfo, "transferMethod">[];
  testnet?: boolean;
}

/** A network asked for or configured that the registry cannot serve (unknown name, missing fields). */
export class NetworkConfigError extends FacilitatorError {}

export class NetworkRegistry {
  private readonly byId = new Map<string, NetworkInfo>();
  readonly networks: readonly NetworkInfo[];

  constructor(overrides: readonly NetworkOverride[] = [], base: readonly NetworkInfo[] = BUILTIN_NETWORKS) {
    const merged = new Map(base.map((n) => [n.name, n]));
    for (const o of overrides) merged.set(o.name, applyOverride(merged.get(o.name), o));
    this.networks = [...merged.values()];
    for (const n of this.networks) {
      this.byId.set(n.name, n);
      this.byId.set(n.caip2, n);
    }
  }

  /** Accepts either spelling: the v1 name or the CAIP-2 id. */
  resolve(id: string): NetworkInfo | undefined {
    return this.byId.get(id);
  }

  get(name: string): NetworkInfo {
    const n = this.resolve(name);
    if (!n) throw new NetworkConfigError(`unknown network ${name}`);
    return n;
  }
}

function applyOverride(existing: NetworkInfo | undefined, o: NetworkOverride): NetworkInfo {
  if (existing) {
    const chainId = o.chainId ?? existing.chainId;
    return {
      ...existing,
      chainId,
      caip2: o.caip2 ?? (existing.family === "evm" && o.chainId ? `eip155:${chainId}` : existing.caip2),
      rpcUrl: o.rpcUrl ?? existing.rpcUrl,
      asset: { ...existing.asset, ...definedOnly(o.asset ?? {}) },
      ...withExtraAssets(o, existing.asset.transferMethod, existing.extraAssets),
      testnet: o.testnet ?? existing.testnet,
    };
  }
  // A new network can only be EVM: Solana clusters are fixed by the spec's CAIP-2 ids.
  const a = o.asset;
  if (!o.chainId || !o.rpcUrl || !a?.address || a.decimals === undefined || !a.name || !a.version) {
    throw new NetworkConfigError(
      `new network ${o.name} needs chainId, rpcUrl and asset {address, decimals, name, version}`,
    );
  }
  const transferMethod = a.transferMethod ?? "eip3009";
  return {
    ...evm(o.name, o.chainId, o.rpcUrl, { address: a.address, decimals: a.decimals, name: a.name, version: a.version, transferMethod }, o.testnet ?? true),
    ...withExtraAssets(o, transferMethod, undefined),
  };
}

function withExtraAssets(o: NetworkOverride, transferMethod: TransferMethod, existing: readonly AssetInfo[] | undefined): { extraAssets?: readonly AssetInfo[] } {
  if (!o.extraAssets) return existing ? { extraAssets: existing } : {};
  for (const [i, a] of o.extraAssets.entries()) {
    if (typeof a?.address !== "string" || !a.address || !Number.isInteger(a.decimals)) {
      throw new NetworkConfigError(`network ${o.name}: extraAssets #${i + 1} needs address and decimals`);
    }
  }
  return { extraAssets: o.extraAssets.map((a) => ({ ...a, transferMethod })) };
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
