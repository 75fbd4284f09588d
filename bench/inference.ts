/**
 * Inference anchoring numbers: Merkle tree build time by batch size, and gas per anchored inference.
 * `pnpm exec tsx bench/inference.ts [--max-leaves 1048576]`; results in bench/results/inference-*.json.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createPublicClient, createWalletClient, http, keccak256, toHex, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { devKey, DevRole, loadArtifact, localChain, startAnvil } from "@facilitator/devnet";
import { buildBatchTree, deploySettlementRelay, SETTLEMENT_RELAY_ABI, type InferenceRecord } from "@facilitator/inference";

const flag = process.argv.indexOf("--max-leaves");
const maxLeaves = flag > 0 ? Number(process.argv[flag + 1]) : 1_048_576;
const hash = (i: number, salt: string): Hex => keccak256(toHex(`${salt}${i}`));

function records(n: number): InferenceRecord[] {
  return Array.from({ length: n }, (_, i) => ({ inputHash: hash(i, "in"), outputHash: hash(i, "out"), settlementType: "settle-batch" }) as InferenceRecord);
}

const tree: { leaves: number; buildMs: number; proofsMs: number }[] = [];
for (const n of [1_024, 16_384, 1_048_576].filter((n) => n <= maxLeaves)) {
  const rs = records(n);
  const ids = rs.map((_, i) => hash(i, "id"));
  const t0 = performance.now();
  const built = buildBatchTree(rs, ids, new Date().toISOString());
  const t1 = performance.now();
  for (let i = 0; i < n; i++) built.proof(i);
  const t2 = performance.now();
  tree.push({ leaves: n, buildMs: Math.round(t1 - t0), proofsMs: Math.round(t2 - t1) });
  console.log(`tree of ${n} leaves: built in ${Math.round(t1 - t0)} ms, every proof in ${Math.round(t2 - t1)} ms`);
}

const anvil = await startAnvil({ chainId: 84532 });
const gas: { batchSize: number; gasUsed: string; gasPerInference: number }[] = [];
try {
  const relayerKey = devKey(DevRole.relayer);
  const relay = await deploySettlementRelay({
    rpcUrl: anvil.rpcUrl, chainId: 84532, deployerKey: devKey(DevRole.deployer),
    relayers: [privateKeyToAccount(relayerKey).address], artifact: loadArtifact("SettlementRelay"), pollingIntervalMs: 50,
  });
  const chain = localChain(84532, anvil.rpcUrl);
  const wallet = createWalletClient({ chain, transport: http(anvil.rpcUrl), account: privateKeyToAccount(relayerKey) });
  const client = createPublicClient({ chain, transport: http(anvil.rpcUrl), pollingInterval: 50 });
  const blobId = toHex("A".repeat(43)); // a real Walrus blob id is 43 base64url characters
  for (const size of [1, 16, 256, 1_024, 4_096]) {
    const hashTx = await wallet.writeContract({ address: relay.address, abi: SETTLEMENT_RELAY_ABI, functionName: "settleBatch", args: [hash(size, "root"), BigInt(size), blobId] });
    const receipt = await client.waitForTransactionReceipt({ hash: hashTx });
    gas.push({ batchSize: size, gasUsed: receipt.gasUsed.toString(), gasPerInference: Number(receipt.gasUsed) / size });
    console.log(`batch of ${size}: ${receipt.gasUsed} gas, ${(Number(receipt.gasUsed) / size).toFixed(1)} per inference`);
  }
  const single = await wallet.writeContract({ address: relay.address, abi: SETTLEMENT_RELAY_ABI, functionName: "settle", args: [hash(1, "a"), hash(1, "b")] });
  console.log(`one Settlement event: ${(await client.waitForTransactionReceipt({ hash: single })).gasUsed} gas`);
} finally {
  await anvil.stop();
}
const out = join(import.meta.dirname, "results", `inference-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
writeFileSync(out, JSON.stringify({ node: process.version, tree, gas }, null, 2));
console.log(`wrote ${out}`);
