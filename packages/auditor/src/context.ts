/** The auditor's own configuration, and what one audit call reads through it. */
import { getAddress, type Address } from "viem";
import { blobCache, type BlobFetch } from "./aggregator.ts";
import type { BlobIdCheck } from "./blob-id.ts";
import type { ChainReader } from "./chain.ts";
import type { TeeKeys } from "./formats.ts";

export interface AuditConfig {
  rpcUrl: string;
  /** When given, the RPC must serve this chain. */
  chainId?: number;
  /** The SettlementRelay the auditor trusts (from its own configuration, never from the facilitator). */
  relayAddress: Address;
  /** A Walrus aggregator (`GET {aggregatorUrl}/v1/blobs/{blobId}`). */
  aggregatorUrl: string;
  /** teeId (bytes32) -> address of the TEE's key. */
  teeKeys?: TeeKeys;
  /** How to check a dump against its blob id: real Walrus ids, the local service's scheme, or not at all. Default "walrus". */
  blobIdCheck?: BlobIdCheck;
  /** First block to search for events (default 0). */
  fromBlock?: bigint;
  /** Largest eth_getLogs block range (default 50,000). */
  maxBlockRange?: bigint;
}

export interface AuditContext {
  chain: ChainReader;
  relay: Address;
  getBlob: (blobId: string) => Promise<BlobFetch>;
  blobIdCheck: BlobIdCheck;
  teeKeys: TeeKeys;
  fromBlock: bigint;
}

/**
 * A fresh context per call, blobs cached only within it: a long-lived auditor must see a blob that
 * was removed or replaced since its last audit.
 */
export function auditContext(config: AuditConfig, chain: ChainReader): AuditContext {
  return {
    chain,
    relay: getAddress(config.relayAddress),
    getBlob: blobCache(config.aggregatorUrl),
    blobIdCheck: config.blobIdCheck ?? "walrus",
    teeKeys: config.teeKeys ?? {},
    fromBlock: config.fromBlock ?? 0n,
  };
}
