/** The local world the embedded default runs on: chains, tokens, relay, Walrus and registered TEEs on this machine, nothing to install. */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { toHex, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import type { NetworkOverride } from "@facilitator/core";
import {
  devKey,
  DevRole,
  evmWorldOverrides,
  loadArtifact,
  setupSolanaWorld,
  startEvmWorld,
  startSolanaRpc,
  startWalrusService,
  type DevnetJson,
} from "@facilitator/devnet";
import { deploySettlementRelay } from "@facilitator/inference";
import type { Config } from "./config.ts";
import { startLocalTees } from "./local-tees.ts";

export interface LocalWorld {
  json: Omit<DevnetJson, "facilitatorUrl">;
  config: Pick<
    Config,
    "networks" | "networkOverrides" | "evmKeys" | "svmKeys" | "relay" | "relayerKey" | "walrus" | "inferenceApiKeys" | "teeKeys" | "batchTimeoutMs"
  > & { tee: Pick<Config["tee"], "registryAddress" | "attestationRoots" | "operatorApiKey"> };
  /** The block the relay was deployed at: where audits and the explorer start. */
  relayFromBlock: bigint;
  stop(): Promise<void>;
}

/** The local secp256k1 TEE: a fixed test key, registered in the local TEE registry beside the gateway-style RSA TEE. */
const TEE_INDEX = 30;

const SOLANA = { network: "solana-devnet", caip2: "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1" } as const;

export async function startLocalWorld(stateDir: string): Promise<LocalWorld> {
  const [evm, solanaRpc, walrus] = await Promise.all([
    startEvmWorld({ networks: ["base-sepolia", "og-evm", "megaeth"] }),
    startSolanaRpc(),
    startWalrusService({ dir: join(stateDir, "walrus") }),
  ]);
  const stop = async () => {
    await Promise.all([evm.stop(), solanaRpc.stop(), walrus.stop()]);
  };
  try {
    const relayChain = evm.networks["base-sepolia"]!;
    const relayerKey = devKey(DevRole.relayer);
    const [sol, relay] = await Promise.all([
      setupSolanaWorld(solanaRpc, { decimals: 6 }),
      deploySettlementRelay({
        rpcUrl: relayChain.rpcUrl,
        chainId: relayChain.chainId,
        deployerKey: evm.deployerKey,
        relayers: [privateKeyToAccount(relayerKey).address],
        artifact: loadArtifact("SettlementRelay"),
        pollingIntervalMs: 50,
      }),
    ]);
    // Registered through the registrar (attestation verified, document on Walrus, entry on chain); TEE_KEYS stays empty.
    const tees = await startLocalTees({
      rpcUrl: relayChain.rpcUrl,
      chainId: relayChain.chainId,
      deployerKey: evm.deployerKey,
      relayerKey,
      walrus: { publisherUrl: walrus.publisherUrl, aggregatorUrl: walrus.aggregatorUrl },
      secpKey: devKey(TEE_INDEX),
    });
    const tee = tees.secp;
    const inferenceApiKey: Hex = toHex(randomBytes(24));
    const operatorApiKey: Hex = toHex(randomBytes(24));
    const solanaOverride: NetworkOverride = { name: SOLANA.network, rpcUrl: solanaRpc.rpcUrl, asset: { address: sol.mint } };
    return {
      json: {
        networks: {
          ...evm.networks,
          [SOLANA.network]: {
            ...SOLANA,
            rpcUrl: solanaRpc.rpcUrl,
            wsUrl: solanaRpc.wsUrl,
            asset: { address: sol.mint, decimals: sol.decimals, transferMethod: "spl" },
            feePayer: sol.feePayers[0]!.address,
            payer: { address: sol.payer.address, secretKey: sol.payer.secretKey },
            payTo: sol.payTo,
          },
        },
        settlementRelay: { network: relayChain.network, address: relay.address },
        walrus: { publisherUrl: walrus.publisherUrl, aggregatorUrl: walrus.aggregatorUrl },
        inferenceApiKey,
        operatorApiKey,
        tee,
        gatewayTee: tees.gateway,
        teeRegistry: { network: relayChain.network, ...tees.registry },
      },
      config: {
        networks: [...Object.keys(evm.networks), SOLANA.network],
        networkOverrides: [...evmWorldOverrides(evm), solanaOverride],
        evmKeys: evm.facilitatorKeys,
        svmKeys: sol.feePayers.map((f) => f.secretKey),
        relay: { network: relayChain.network, address: relay.address },
        relayerKey,
        walrus: { publisherUrl: walrus.publisherUrl, aggregatorUrl: walrus.aggregatorUrl, epochs: 53, permanent: true },
        inferenceApiKeys: [inferenceApiKey],
        teeKeys: {},
        tee: { registryAddress: tees.registry.address, attestationRoots: [tees.registry.attestationRootPem], operatorApiKey },
        batchTimeoutMs: 2_000,
      },
      relayFromBlock: relay.blockNumber,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** `config` run on the local world: its networks, keys and services, with state under `dataDir`. */
export function localWorldConfig(config: Config, world: LocalWorld, dataDir: string): Config {
  return { ...config, ...world.config, tee: { ...config.tee, ...world.config.tee }, dataDir };
}
