/**
 * The auditor suites' local world: anvil, a real SettlementRelay with one relayer, the local
 * Walrus-compatible service, and a TEE key. Batches are built with the inference package's own
 * exports (records, leaf encoding, tree, dump, TEE signing) and anchored through the relay, so what
 * the auditor reads is what the pipeline writes. Forgeries are made by hand on top.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createPublicClient, createWalletClient, http, keccak256, toHex, type Address, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { CHAIN_IDS, deployContract, devKey, DevRole, localChain, startAnvil, startWalrusService, type AnvilNode, type WalrusService } from "@facilitator/devnet";
import { buildBatchTree, recordId, SETTLEMENT_RELAY_ABI, signTeeRecord, type BatchTree, type InferenceRecord } from "@facilitator/inference";

export const CHAIN_ID = CHAIN_IDS["base-sepolia"];

export interface Anchored {
  records: InferenceRecord[];
  ids: Hex[];
  tree: BatchTree;
  root: Hex;
  blobId: string;
  transactionHash: Hex;
}

export interface AuditWorld {
  rpcUrl: string;
  relay: Address;
  aggregatorUrl: string;
  publisherUrl: string;
  /** Where the local service keeps blob content (`<dir>/blobs/<blobId>`). */
  blobDir: string;
  tee: { teeId: Hex; key: Hex; address: Address };
  teeKeys: Record<string, Address>;
  relayerKey: Hex;
  deployerKey: Hex;
  strangerKey: Hex;
  /** A batch-lane record signed by the TEE (or by `signerKey`, to forge). */
  record(label: string, signerKey?: Hex): InferenceRecord;
  /** Builds the tree, stores the dump and anchors the root through `relay` (default: the real one). */
  anchorBatch(records: InferenceRecord[], opts?: { relay?: Address; key?: Hex }): Promise<Anchored>;
  buildBatch(records: InferenceRecord[]): BatchTree;
  upload(content: string | Uint8Array): Promise<string>;
  settleBatch(root: Hex, size: number, blobId: string, opts?: { relay?: Address; key?: Hex }): Promise<Hex>;
  settle(inputHash: Hex, outputHash: Hex): Promise<Hex>;
  /** Deploys another SettlementRelay whose admin and relayer is `key`. */
  deployRelay(key: Hex): Promise<Address>;
  stop(): Promise<void>;
}

let counter = 0;

export async function startAuditWorld(): Promise<AuditWorld> {
  const anvil: AnvilNode = await startAnvil({ chainId: CHAIN_ID });
  const dir = mkdtempSync(join(tmpdir(), "auditor-walrus-"));
  let walrus: WalrusService | undefined;
  try {
    walrus = await startWalrusService({ dir });
    const deployerKey = devKey(DevRole.deployer);
    const relayerKey = devKey(DevRole.relayer);
    const strangerKey = devKey(DevRole.thirdParty);
    const teeKey = keccak256(toHex("auditor test TEE key"));
    const tee = { teeId: keccak256(toHex("auditor-test-tee")), key: teeKey, address: privateKeyToAccount(teeKey).address };
    const chain = localChain(CHAIN_ID, anvil.rpcUrl);
    const publicClient = createPublicClient({ chain, transport: http(anvil.rpcUrl), pollingInterval: 50 });

    const deployRelay = (key: Hex) =>
      deployContract({
        rpcUrl: anvil.rpcUrl,
        chainId: CHAIN_ID,
        deployerKey: key,
        artifact: "SettlementRelay",
        args: [privateKeyToAccount(key).address, [privateKeyToAccount(key).address]],
      });
    const relay = await deployContract({
      rpcUrl: anvil.rpcUrl,
      chainId: CHAIN_ID,
      deployerKey,
      artifact: "SettlementRelay",
      args: [privateKeyToAccount(deployerKey).address, [privateKeyToAccount(relayerKey).address]],
    });

    // One queue per key, so parallel anchoring never reuses a nonce.
    const queues = new Map<Hex, Promise<unknown>>();
    const send = async (key: Hex, to: Address, call: { functionName: string; args: readonly unknown[] }): Promise<Hex> => {
      const wallet = createWalletClient({ account: privateKeyToAccount(key), chain, transport: http(anvil.rpcUrl) });
      const run = (queues.get(key) ?? Promise.resolve()).then(() => wallet.writeContract({ address: to, abi: SETTLEMENT_RELAY_ABI, ...call } as never));
      queues.set(key, run.catch(() => undefined));
      const hash = await run;
      const receipt = await publicClient.waitForTransactionReceipt({ hash, pollingInterval: 50 });
      if (receipt.status !== "success") throw new Error(`${call.functionName} reverted in ${hash}`);
      return hash;
    };
    const upload = async (content: string | Uint8Array): Promise<string> => {
      const res = await fetch(`${walrus!.publisherUrl}/v1/blobs?epochs=5&permanent=true`, { method: "PUT", body: content as BodyInit });
      if (!res.ok) throw new Error(`upload failed: ${res.status}`);
      const j = (await res.json()) as { newlyCreated?: { blobObject: { blobId: string } }; alreadyCertified?: { blobId: string } };
      return j.newlyCreated?.blobObject.blobId ?? j.alreadyCertified!.blobId;
    };
    const settleBatch = (root: Hex, size: number, blobId: string, opts: { relay?: Address; key?: Hex } = {}) =>
      send(opts.key ?? relayerKey, opts.relay ?? relay, { functionName: "settleBatch", args: [root, BigInt(size), toHex(blobId)] });
    const buildBatch = (records: InferenceRecord[]) => buildBatchTree(records, records.map(recordId), new Date(1_700_000_000_000 + counter++).toISOString());

    return {
      rpcUrl: anvil.rpcUrl,
      relay,
      aggregatorUrl: walrus.aggregatorUrl,
      publisherUrl: walrus.publisherUrl,
      blobDir: join(dir, "blobs"),
      tee,
      teeKeys: { [tee.teeId]: tee.address },
      relayerKey,
      deployerKey,
      strangerKey,
      record(label, signerKey = tee.key) {
        const inputHash = keccak256(toHex(`input ${label}`));
        const outputHash = keccak256(toHex(`output ${label}`));
        const teeTimestamp = String(1_700_000_000 + counter++);
        return signTeeRecord({ teeId: tee.teeId, privateKey: signerKey }, { inputHash, outputHash, settlementType: "settle-batch", teeTimestamp });
      },
      buildBatch,
      async anchorBatch(records, opts) {
        const tree = buildBatch(records);
        const blobId = await upload(tree.dumpJson);
        const transactionHash = await settleBatch(tree.root, records.length, blobId, opts);
        return { records, ids: records.map(recordId), tree, root: tree.root, blobId, transactionHash };
      },
      upload,
      settleBatch,
      settle: (inputHash, outputHash) => send(relayerKey, relay, { functionName: "settle", args: [inputHash, outputHash] }),
      deployRelay,
      async stop() {
        await walrus?.stop();
        await anvil.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await walrus?.stop();
    await anvil.stop();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
