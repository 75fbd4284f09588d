/**
 * Inference settings from the environment. The published inference facilitator's names are accepted
 * beside ours so an operator's existing `.env` keeps working:
 *
 *   SETTLEMENT_BATCH_SIZE (20)            records per Merkle batch
 *   SETTLEMENT_BATCH_TIMEOUT (60000)      ms the oldest record may wait before a smaller batch forms
 *   SETTLEMENT_MAX_ATTEMPTS (5)           chain refusals before a batch is parked
 *   SETTLEMENT_RELAY_ADDRESS | X402_SETTLEMENT_CONTRACT     the SettlementRelay
 *   SETTLEMENT_RELAYER_KEY | EVM_PRIVATE_KEY                key holding RELAYER_ROLE
 *   SETTLEMENT_NETWORK                    network the relay lives on (e.g. og-evm)
 *   WALRUS_PUBLISHER_URL                  with or without a trailing /v1/blobs
 *   WALRUS_AGGREGATOR_URL                 (default: the publisher's host, as a daemon serves both)
 *   WALRUS_EPOCHS (53), WALRUS_PERMANENT (true)
 *   INFERENCE_TEE_KEYS                    `teeId=address` pairs, comma separated
 *   INFERENCE_REQUIRE_TEE_SIGNATURE       (true when INFERENCE_TEE_KEYS names a TEE, else false)
 */
import type { Address, Hex } from "viem";
import { parseTeeRegistry } from "./validation.ts";

export interface InferenceEnvConfig {
  batchSize: number;
  batchTimeoutMs: number;
  maxAttempts: number;
  relayAddress?: Address;
  relayerKey?: Hex;
  relayNetwork?: string;
  walrus?: { publisherUrl: string; aggregatorUrl: string; epochs: number; permanent: boolean };
  teeKeys: Map<string, Address>;
  requireTeeSignature: boolean;
}

export function inferenceConfigFromEnv(env: Record<string, string | undefined> = process.env): InferenceEnvConfig {
  const publisher = env.WALRUS_PUBLISHER_URL?.trim();
  const relayAddress = (env.SETTLEMENT_RELAY_ADDRESS ?? env.X402_SETTLEMENT_CONTRACT)?.trim();
  const relayerKey = (env.SETTLEMENT_RELAYER_KEY ?? env.EVM_PRIVATE_KEY)?.trim();
  if (relayAddress && !/^0x[0-9a-fA-F]{40}$/.test(relayAddress)) throw new Error("SETTLEMENT_RELAY_ADDRESS must be a 20-byte hex address");
  if (relayerKey && !/^0x[0-9a-fA-F]{64}$/.test(relayerKey)) throw new Error("SETTLEMENT_RELAYER_KEY must be a 32-byte hex private key");
  const teeKeys = parseTeeRegistry(env.INFERENCE_TEE_KEYS);
  return {
    batchSize: positiveInt(env.SETTLEMENT_BATCH_SIZE, 20, "SETTLEMENT_BATCH_SIZE"),
    batchTimeoutMs: positiveInt(env.SETTLEMENT_BATCH_TIMEOUT, 60_000, "SETTLEMENT_BATCH_TIMEOUT"),
    maxAttempts: positiveInt(env.SETTLEMENT_MAX_ATTEMPTS, 5, "SETTLEMENT_MAX_ATTEMPTS"),
    ...(relayAddress ? { relayAddress: relayAddress as Address } : {}),
    ...(relayerKey ? { relayerKey: relayerKey as Hex } : {}),
    ...(env.SETTLEMENT_NETWORK ? { relayNetwork: env.SETTLEMENT_NETWORK.trim() } : {}),
    ...(publisher
      ? {
          walrus: {
            publisherUrl: publisher,
            aggregatorUrl: env.WALRUS_AGGREGATOR_URL?.trim() || publisher.replace(/\/+$/, "").replace(/\/v1\/blobs$/, ""),
            epochs: positiveInt(env.WALRUS_EPOCHS, 53, "WALRUS_EPOCHS"),
            permanent: (env.WALRUS_PERMANENT ?? "true").trim().toLowerCase() !== "false",
          },
        }
      : {}),
    teeKeys,
    requireTeeSignature: (env.INFERENCE_REQUIRE_TEE_SIGNATURE?.trim() || String(teeKeys.size > 0)).toLowerCase() === "true",
  };
}

function positiveInt(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value.trim() === "") return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}
