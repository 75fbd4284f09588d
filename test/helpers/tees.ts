/**
 * A local world with trusted TEEs for the suites: anvil, Walrus, the SettlementRelay, a TEERegistry
 * with the local world's two TEEs registered through the registrar (startLocalTees), and facilitators
 * configured with that registry. Admin actions (approve, revoke) are sent with the deployer's key.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createPublicClient, createWalletClient, http, toHex, type Abi, type Address, type Hex, type PublicClient } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { devKey, DevRole, localChain, startEvmWorld, startWalrusService, type EvmWorld, type WalrusService } from "@facilitator/devnet";
import { buildGatewayBatchTree, recordId, RELAYER_ROLE, SETTLEMENT_RELAY_ABI, TeeRegistryClient, WalrusClient, type InferenceRecord } from "@facilitator/inference";
import { loadConfig, type Config } from "@facilitator/server";
import { REGISTRAR_ROLE, TEE_REGISTRY_ABI } from "@facilitator/tee";
import { startLocalTees, type LocalTees } from "../../packages/server/src/local-tees.ts";
import { anchoringConfig, startFacilitatorOnWorld, type FacilitatorFixture } from "./facilitator.ts";
import { deployRelay } from "./relay.ts";

export const OPERATOR_KEY = "operator-key-for-tests-0123456789";
export const INFERENCE_KEY = "router-key";

export interface TeeWorld {
  world: EvmWorld;
  walrus: WalrusService;
  walrusDir: string;
  relay: { address: Address; blockNumber: bigint; relayerKey: Hex };
  tees: LocalTees;
  rpcUrl: string;
  chainId: number;
  client: PublicClient;
  /** Reads the registry as anyone may. */
  registry: TeeRegistryClient;
  /** A facilitator on this world with the registry configured (and `config` on top). */
  facilitator(config?: Partial<Config>): Promise<FacilitatorFixture>;
  /** Sends an admin call (approveMeasurement, revokeMeasurement, revokeTee) to the registry. */
  admin(functionName: "approveMeasurement" | "revokeMeasurement" | "revokeTee", args: readonly unknown[]): Promise<bigint>;
  /**
   * What a forger with a relayer's and a registrar's role could do behind the door's back (a third
   * account is granted both): anchor gateway records as they are, register a TEE with any fields.
   */
  bypass: {
    anchorGateway(records: InferenceRecord[]): Promise<{ root: Hex; blockNumber: bigint }>;
    register(args: readonly unknown[]): Promise<bigint>;
    upload(content: Uint8Array | string): Promise<string>;
  };
  stop(): Promise<void>;
}

export async function startTeeWorld(): Promise<TeeWorld> {
  const world = await startEvmWorld({ networks: ["base-sepolia"] });
  const walrusDir = mkdtempSync(join(tmpdir(), "walrus-tees-"));
  const walrus = await startWalrusService({ dir: walrusDir });
  const chain = world.networks["base-sepolia"]!;
  const relay = await deployRelay(world);
  const tees = await startLocalTees({
    rpcUrl: chain.rpcUrl,
    chainId: chain.chainId,
    deployerKey: world.deployerKey,
    relayerKey: relay.relayerKey,
    walrus: { publisherUrl: walrus.publisherUrl, aggregatorUrl: walrus.aggregatorUrl },
    secpKey: devKey(30),
  });
  const client = createPublicClient({ chain: localChain(chain.chainId, chain.rpcUrl), transport: http(chain.rpcUrl), pollingInterval: 50 }) as PublicClient;
  const running: FacilitatorFixture[] = [];
  const send = async (key: Hex, address: Address, abi: Abi, functionName: string, args: readonly unknown[]) => {
    const wallet = createWalletClient({ account: privateKeyToAccount(key), chain: localChain(chain.chainId, chain.rpcUrl), transport: http(chain.rpcUrl) });
    const hash = await wallet.writeContract({ address, abi, functionName, args } as never);
    const receipt = await client.waitForTransactionReceipt({ hash, pollingInterval: 50 });
    if (receipt.status !== "success") throw new Error(`${functionName} reverted`);
    return receipt.blockNumber;
  };
  const forger = devKey(DevRole.thirdParty);
  const forgerAddress = privateKeyToAccount(forger).address;
  await send(world.deployerKey, relay.address, SETTLEMENT_RELAY_ABI, "grantRole", [RELAYER_ROLE, forgerAddress]);
  await send(world.deployerKey, tees.registry.address, TEE_REGISTRY_ABI, "grantRole", [REGISTRAR_ROLE, forgerAddress]);
  const blobs = new WalrusClient({ publisherUrl: walrus.publisherUrl, aggregatorUrl: walrus.aggregatorUrl });
  let batches = 0;
  return {
    world,
    walrus,
    walrusDir,
    relay,
    tees,
    rpcUrl: chain.rpcUrl,
    chainId: chain.chainId,
    client,
    registry: new TeeRegistryClient({ rpcUrl: chain.rpcUrl, chainId: chain.chainId, address: tees.registry.address, pollingIntervalMs: 50 }),
    async facilitator(config = {}) {
      const base = loadConfig({}).tee;
      const fx = await startFacilitatorOnWorld({
        world,
        config: {
          ...anchoringConfig(relay, walrus),
          inferenceApiKeys: [INFERENCE_KEY],
          teeKeys: {},
          ...config,
          tee: { ...base, registryAddress: tees.registry.address, attestationRoots: [tees.registry.attestationRootPem], operatorApiKey: OPERATOR_KEY, registryCacheMs: 0, ...config.tee },
        },
      });
      running.push(fx);
      return fx;
    },
    admin: (functionName, args) => send(world.deployerKey, tees.registry.address, TEE_REGISTRY_ABI, functionName, args),
    bypass: {
      async anchorGateway(records) {
        const tree = buildGatewayBatchTree(records, records.map(recordId), new Date(1_700_000_000_000 + batches++).toISOString());
        const { blobId } = await blobs.store(tree.dumpJson);
        const blockNumber = await send(forger, relay.address, SETTLEMENT_RELAY_ABI, "settleBatch", [tree.root, BigInt(records.length), toHex(blobId)]);
        return { root: tree.root, blockNumber };
      },
      register: (args) => send(forger, tees.registry.address, TEE_REGISTRY_ABI, "register", args),
      upload: async (content) => (await blobs.store(content)).blobId,
    },
    async stop() {
      for (const fx of running) await fx.stop();
      await walrus.stop();
      await world.stop();
      rmSync(walrusDir, { recursive: true, force: true });
    },
  };
}
