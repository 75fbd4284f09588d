/** The auditor's own configuration, and what one audit call reads through it. */
import { getAddress, type Address, type Hex } from "viem";
import { blobCache, type BlobFetch } from "./aggregator.ts";
import type { BlobIdCheck } from "./blob-id.ts";
import { AWS_NITRO_ROOT_PEM, type TrustedRoot } from "@facilitator/tee";
import type { ChainReader } from "./chain.ts";
import type { TeeKeys } from "./formats.ts";
import { teeEvidence, type TeeEvidence, type TeeTrustSetup } from "./tee-trust.ts";

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
  /** The TEERegistry the auditor trusts, on the relay's chain: TEEs are then checked for an attested enclave. */
  teeRegistry?: Address;
  /** Roots attestation documents must chain to (default: the AWS Nitro root). */
  attestationRoots?: readonly TrustedRoot[];
  /** Less than "attested by an approved enclave" fails the audit. Default: true when `teeRegistry` is set. */
  requireAttested?: boolean;
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
  trust: TeeTrustSetup;
  /** What the registry and Walrus say about a TEE, read once per audit; undefined without a registry. */
  teeEvidence: (teeId: Hex) => Promise<TeeEvidence | undefined>;
}

/**
 * A fresh context per call, blobs cached only within it: a long-lived auditor must see a blob that
 * was removed or replaced since its last audit.
 */
export function auditContext(config: AuditConfig, chain: ChainReader): AuditContext {
  const getBlob = blobCache(config.aggregatorUrl);
  const registry = config.teeRegistry && getAddress(config.teeRegistry);
  const trust: TeeTrustSetup = { registry, roots: config.attestationRoots ?? [AWS_NITRO_ROOT_PEM], requireAttested: config.requireAttested ?? registry !== undefined };
  const evidence = new Map<string, Promise<TeeEvidence>>();
  return {
    chain,
    relay: getAddress(config.relayAddress),
    getBlob,
    blobIdCheck: config.blobIdCheck ?? "walrus",
    teeKeys: config.teeKeys ?? {},
    fromBlock: config.fromBlock ?? 0n,
    trust,
    teeEvidence: async (teeId) => {
      if (!registry) return undefined;
      const id = teeId.toLowerCase();
      let hit = evidence.get(id);
      if (!hit) evidence.set(id, (hit = teeEvidence(chain, registry, trust.roots, getBlob, id as Hex)));
      return hit;
    },
  };
}
