/** Test fixtures: our facilitator over HTTP on a free port, alone or on a local world (EVM, EVM with inference, Solana). */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { keccak256, toHex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { devKey, evmWorldOverrides, startEvmWorld, startWalrusService, type EvmWorld, type SolanaWorld } from "@facilitator/devnet";
import { composeServices, createLogger, loadConfig, type Config, type Services } from "@facilitator/server";
import { deployRelay } from "./relay.ts";

export interface RunningFacilitator {
  url: string;
  services: Services;
  stop(): Promise<void>;
}

/** Our facilitator with the given configuration (on top of the defaults), embedded ledger in a temp dir. */
export async function startFacilitator(config: Partial<Config>): Promise<RunningFacilitator> {
  const dataDir = mkdtempSync(join(tmpdir(), "facilitator-"));
  const services = await composeServices({ ...loadConfig({}), port: 0, dataDir, ...config }, createLogger("silent"), { pollingIntervalMs: 50 });
  const url = await services.listen();
  return {
    url,
    services,
    async stop() {
      await services.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface FacilitatorFixture extends RunningFacilitator {
  world: EvmWorld;
}

export async function startFacilitatorOnWorld(
  opts: { networks?: string[]; config?: Partial<Config>; world?: EvmWorld } = {},
): Promise<FacilitatorFixture> {
  const world = opts.world ?? (await startEvmWorld({ networks: opts.networks ?? ["base-sepolia"] }));
  const running = await startFacilitator({
    networks: Object.keys(world.networks),
    networkOverrides: evmWorldOverrides(world),
    evmKeys: world.facilitatorKeys,
    ...opts.config,
  });
  return {
    ...running,
    world,
    async stop() {
      await running.stop();
      if (!opts.world) await world.stop();
    },
  };
}

/** Our facilitator serving solana-devnet on a local Solana world: its node, its mint, its fee payers. */
export function startFacilitatorOnSolana(
  local: { rpc: { rpcUrl: string }; world: SolanaWorld },
  config: Partial<Config> = {},
): Promise<RunningFacilitator> {
  return startFacilitator({
    networks: ["solana-devnet"],
    networkOverrides: [{ name: "solana-devnet", rpcUrl: local.rpc.rpcUrl, asset: { address: local.world.mint } }],
    svmKeys: local.world.feePayers.map((f) => f.secretKey),
    ...config,
  });
}

export interface InferenceFixture extends FacilitatorFixture {
  relayAddress: `0x${string}`;
  walrus: Awaited<ReturnType<typeof startWalrusService>>;
  apiKey: string;
  tee: { teeId: `0x${string}`; privateKey: `0x${string}`; address: `0x${string}` };
}

/** What a facilitator needs to anchor on a world's relay and Walrus service, batching quickly (4 records or 300 ms). */
export function anchoringConfig(relay: { address: `0x${string}`; relayerKey: `0x${string}` }, walrus: { publisherUrl: string; aggregatorUrl: string }): Partial<Config> {
  return {
    relay: { network: "base-sepolia", address: relay.address },
    relayerKey: relay.relayerKey,
    walrus: { publisherUrl: walrus.publisherUrl, aggregatorUrl: walrus.aggregatorUrl, epochs: 1, permanent: true },
    batchSize: 4,
    batchTimeoutMs: 300,
  };
}

/** The EVM world plus a Walrus-compatible service and a SettlementRelay, with the facilitator anchoring on them. */
export async function startFacilitatorWithInference(opts: { config?: Partial<Config> } = {}): Promise<InferenceFixture> {
  const world = await startEvmWorld({ networks: ["base-sepolia"] });
  const walrusDir = mkdtempSync(join(tmpdir(), "walrus-"));
  const walrus = await startWalrusService({ dir: walrusDir });
  const relay = await deployRelay(world);
  const teeKey = devKey(30);
  const tee = { teeId: keccak256(toHex("test-tee")), privateKey: teeKey, address: privateKeyToAccount(teeKey).address };
  const apiKey = "router-key";
  const fx = await startFacilitatorOnWorld({
    world,
    config: { ...anchoringConfig(relay, walrus), inferenceApiKeys: [apiKey], teeKeys: { [tee.teeId]: tee.address }, ...opts.config },
  });
  return {
    ...fx,
    relayAddress: relay.address,
    walrus,
    apiKey,
    tee,
    async stop() {
      await fx.stop();
      await walrus.stop();
      await world.stop();
      rmSync(walrusDir, { recursive: true, force: true });
    },
  };
}
