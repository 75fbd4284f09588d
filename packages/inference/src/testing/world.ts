/**
 * A small local world for the inference tests: anvil, a deployed SettlementRelay with a relayer, the
 * local Walrus-compatible service, and one registered TEE key. Test support: `@facilitator/inference/testing`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createPublicClient, createWalletClient, http, keccak256, toHex, type Address, type Hex, type PublicClient } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { CHAIN_IDS, devKey, DevRole, loadArtifact, localChain, startAnvil, startWalrusService, type AnvilNode, type WalrusService } from "@facilitator/devnet";
import { deploySettlementRelay } from "../deploy.ts";
import { RELAYER_ROLE, RelayClient, SETTLEMENT_RELAY_ABI } from "../relay.ts";
import type { InferenceRecord, SettlementType } from "../records.ts";
import { signTeeRecord } from "../tee.ts";
import type { ValidationConfig } from "../validation.ts";
import { WalrusClient } from "../walrus.ts";

export const CHAIN_ID = CHAIN_IDS["base-sepolia"];
export const NETWORK = "base-sepolia";

export interface TestWorld {
  anvil: AnvilNode;
  walrus: WalrusService;
  walrusDir: string;
  relayAddress: Address;
  relayerKey: Hex;
  adminKey: Hex;
  tee: { id: Hex; key: Hex; address: Address };
  client: PublicClient;
  validation: ValidationConfig;
  relay(opts?: { receiptTimeoutMs?: number; replaceAfterMs?: number }): RelayClient;
  blobs(opts?: { attempts?: number; backoffMs?: number }): WalrusClient;
  setRelayer(allowed: boolean): Promise<void>;
  stop(): Promise<void>;
}

export async function startTestWorld(): Promise<TestWorld> {
  const anvil = await startAnvil({ chainId: CHAIN_ID });
  const walrusDir = mkdtempSync(join(tmpdir(), "walrus-"));
  const walrus = await startWalrusService({ dir: walrusDir });
  const adminKey = devKey(DevRole.deployer);
  const relayerKey = devKey(DevRole.relayer);
  const relayer = privateKeyToAccount(relayerKey).address;
  const { address: relayAddress } = await deploySettlementRelay({
    rpcUrl: anvil.rpcUrl,
    chainId: CHAIN_ID,
    deployerKey: adminKey,
    relayers: [relayer],
    artifact: loadArtifact("SettlementRelay"),
    pollingIntervalMs: 50,
  });
  const teeKey = devKey(8);
  const tee = { id: keccak256(toHex("test-tee")), key: teeKey, address: privateKeyToAccount(teeKey).address };
  const chain = localChain(CHAIN_ID, anvil.rpcUrl);
  const client = createPublicClient({ chain, transport: http(anvil.rpcUrl), pollingInterval: 50, cacheTime: 0 }) as PublicClient;
  const admin = createWalletClient({ account: privateKeyToAccount(adminKey), chain, transport: http(anvil.rpcUrl), pollingInterval: 50, cacheTime: 0 });

  return {
    anvil,
    walrus,
    walrusDir,
    relayAddress,
    relayerKey,
    adminKey,
    tee,
    client,
    validation: { requireTeeSignature: false, teeKeys: new Map([[tee.id, tee.address]]) },
    relay: (opts = {}) =>
      new RelayClient({ rpcUrl: anvil.rpcUrl, chainId: CHAIN_ID, relayAddress, relayerKey, network: NETWORK, pollingIntervalMs: 50, receiptTimeoutMs: opts.receiptTimeoutMs ?? 10_000, replaceAfterMs: opts.replaceAfterMs }),
    blobs: (opts = {}) => new WalrusClient({ publisherUrl: walrus.publisherUrl, aggregatorUrl: walrus.aggregatorUrl, attempts: opts.attempts ?? 3, backoffMs: opts.backoffMs ?? 20 }),
    async setRelayer(allowed) {
      const hash = await admin.writeContract({ address: relayAddress, abi: SETTLEMENT_RELAY_ABI, functionName: allowed ? "grantRole" : "revokeRole", args: [RELAYER_ROLE, relayer] });
      await client.waitForTransactionReceipt({ hash });
    },
    async stop() {
      await walrus.stop();
      await anvil.stop();
      rmSync(walrusDir, { recursive: true, force: true });
    },
  };
}

/** `n` distinct records (TEE-signed when `tee` is given, unless `signed` is false) tagged by `label`. */
export function makeRecords(
  n: number,
  label: string,
  opts: { type?: SettlementType; tee?: TestWorld["tee"]; signed?: boolean } = {},
): InferenceRecord[] {
  return Array.from({ length: n }, (_, i) => {
    let r: InferenceRecord = {
      inputHash: keccak256(toHex(`${label}:in:${i}`)),
      outputHash: keccak256(toHex(`${label}:out:${i}`)),
      settlementType: opts.type ?? "settle-batch",
    };
    if (r.settlementType === "settle-metadata") Object.assign(r, { modelInfo: "test-model", inputData: `prompt ${i}`, outputData: `answer ${i}` });
    if (opts.tee && opts.signed !== false) {
      r = signTeeRecord({ teeId: opts.tee.id, privateKey: opts.tee.key }, { ...r, teeTimestamp: String(1_700_000_000 + i) });
    }
    return r;
  });
}

export { waitFor } from "@facilitator/devnet";
