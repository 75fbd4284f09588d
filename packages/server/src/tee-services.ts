/**
 * Trusted TEEs as the server runs them: the TEERegistry client (on the relay's network, written with
 * the relayer's key), the door's cached view of it beside TEE_KEYS, the registrar behind POST /tees,
 * and the heartbeat relay behind POST /heartbeat. Without TEE_REGISTRY_ADDRESS only TEE_KEYS is known.
 *
 * The registrar's nonces and the relay's per-TEE heartbeat slots live in the shared TEE state, so any
 * API process redeems a nonce another issued and one heartbeat per TEE per interval is relayed in all:
 * Redis when REDIS_URL is set (keys under `x402:{tees}:`), else an LMDB directory, DATA_DIR/tees.
 */
import type { NetworkRegistry } from "@facilitator/core";
import {
  ConfiguredTeeDirectory,
  HeartbeatRelay,
  LmdbTeeState,
  RedisTeeState,
  RegistryTeeDirectory,
  TeeRegistrar,
  TeeRegistryClient,
  WalrusClient,
  type TeeLookup,
} from "@facilitator/inference";
import type { Hex } from "viem";
import type { Config } from "./config.ts";

export interface TeeServices {
  /** The door's lookup: the registry (cached) and TEE_KEYS. */
  directory: TeeLookup;
  registry?: TeeRegistryClient;
  /** POST /tees: needs the registry, Walrus and a relayer key. */
  registrar?: TeeRegistrar;
  /** POST /heartbeat: needs the registry and a relayer key. */
  heartbeat?: HeartbeatRelay;
  /** Closes the shared TEE state. */
  close(): Promise<void>;
}

export interface TeeServicesOptions {
  pollingIntervalMs?: number;
  /** The LMDB directory of the shared TEE state without Redis (created when first needed). */
  stateDir?: () => string;
}

export function openTeeServices(config: Config, networks: NetworkRegistry, opts: TeeServicesOptions = {}): TeeServices {
  const configured = new Map(Object.entries(config.teeKeys).map(([id, address]) => [id.toLowerCase(), address]));
  const address = config.tee.registryAddress;
  if (!address || !config.relay) return { directory: new ConfiguredTeeDirectory(configured), close: async () => undefined };

  const network = networks.get(config.relay.network);
  const writerKey = config.relayerKey ?? config.evmKeys[0];
  const registry = new TeeRegistryClient({ rpcUrl: network.rpcUrl, chainId: network.chainId!, address, writerKey, pollingIntervalMs: opts.pollingIntervalMs });
  const directory = new RegistryTeeDirectory(registry, configured, { ttlMs: config.tee.registryCacheMs });
  const forget = (teeId: Hex) => directory.forget(teeId);
  const state = !writerKey ? undefined : config.redisUrl ? new RedisTeeState({ redis: config.redisUrl }) : opts.stateDir ? new LmdbTeeState(opts.stateDir()) : undefined;
  const registrar =
    writerKey && config.walrus
      ? new TeeRegistrar({
          registry,
          blobs: new WalrusClient({ publisherUrl: config.walrus.publisherUrl, aggregatorUrl: config.walrus.aggregatorUrl, epochs: config.walrus.epochs, permanent: config.walrus.permanent }),
          roots: config.tee.attestationRoots,
          nonceStore: state,
          onRegistered: forget,
        })
      : undefined;
  const heartbeat = writerKey
    ? new HeartbeatRelay({
        registry,
        minIntervalSeconds: config.tee.heartbeatMinIntervalSeconds,
        caps: { maxGas: config.tee.heartbeatMaxGas, maxFeePerGas: config.tee.heartbeatMaxFeePerGasWei },
        slots: state,
        onRelayed: forget,
      })
    : undefined;
  return { directory, registry, registrar, heartbeat, close: async () => state?.close() };
}
