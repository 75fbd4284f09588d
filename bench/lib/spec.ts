/** What the orchestrator tells its child processes, and what they report back. JSON only. */
import type { Address as SolanaAddress } from "@solana/kit";
import type { Address, Hex } from "viem";

export const BASE_SEPOLIA = { network: "base-sepolia", chainId: 84532, caip2: "eip155:84532" } as const;
export const SOLANA_DEVNET = { network: "solana-devnet", caip2: "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1" } as const;

export interface EvmChainSpec {
  rpcUrl: string;
  asset: { address: Address; name: string; version: string; decimals: number; transferMethod: "eip3009" };
}

export interface SvmChainSpec {
  rpcUrl: string;
  mint: SolanaAddress;
}

export interface OursSpec {
  evm?: EvmChainSpec & { keys: Hex[] };
  svm?: SvmChainSpec & { keys: string[] };
  /** Receipt / landing polling interval, as the embedded default uses on local chains. */
  pollingIntervalMs: number;
}

export interface ReferenceSpec {
  /** `nonceManagedKey`: serve a variant with viem's nonce manager under /nonce-managed (not the official example). */
  evm?: EvmChainSpec & { key: Hex; nonceManagedKey?: Hex };
  svm?: SvmChainSpec & { key: string };
  pollingIntervalMs: number;
}

export interface ServerInfo {
  url: string;
  pid: number;
}

export interface SolanaKeyInfo {
  address: SolanaAddress;
  secretKey: string;
}

export interface SolanaNodeSpec {
  payerBalance: string;
  feePayerCount: number;
}

export interface SolanaNodeInfo {
  rpcUrl: string;
  mint: SolanaAddress;
  decimals: number;
  payer: SolanaKeyInfo;
  payTo: SolanaAddress;
  payToTokenAccount: SolanaAddress;
  feePayers: SolanaKeyInfo[];
}
