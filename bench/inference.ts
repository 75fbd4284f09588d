/**
 * Inference anchoring numbers: the queue's intake rate, Merkle tree build time by batch size, and gas
 * per anchored inference. Results in bench/results/inference-*.json.
 *
 *   pnpm exec tsx bench/inference.ts [--sections intake,tree,gas] [--max-leaves 1048576] [--intake-seconds 10]
 *
 * intake: `enqueue` called directly (no HTTP, no validation) by 32 concurrent callers with 100 new
 * records each, for each queue: BullQueue on Redis with appendfsync always (as production should run
 * it), BullQueue on Redis without an append-only file (as bench/load.ts runs it), LmdbQueue (lmdb,
 * fsync per commit). Reports records/s and the CPU each record costs this process and redis-server:
 * the queue's share of the HTTP intake rate that bench/load.ts measures end to end.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createPublicClient, createWalletClient, http, keccak256, toHex, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { devKey, DevRole, loadArtifact, localChain, startAnvil, startRedis } from "@facilitator/devnet";
import {
  BullQueue,
  buildBatchTree,
  deploySettlementRelay,
  LmdbQueue,
  SETTLEMENT_RELAY_ABI,
  type EnqueueItem,
  type InferenceQueue,
  type InferenceRecord,
} from "@facilitator/inference";

const option = (name: string, fallback: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const sections = new Set(option("--sections", "intake,tree,gas").split(","));
const maxLeaves = Number(option("--max-leaves", "1048576"));
const intakeSeconds = Number(option("--intake-seconds", "10"));
const hash = (i: number, salt: string): Hex => keccak256(toHex(`${salt}${i}`));

/** CPU ms used so far by a process (user + system), from /proc. */
function processCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10; // clock ticks of 10 ms
}

/** The pid of the redis-server listening on `port` (it names itself `redis-server 127.0.0.1:<port>`). */
function redisPid(port: number): number {
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    let cmd = "";
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    } catch {
      continue; // the process ended while we looked
    }
    if (cmd.startsWith("redis-server") && cmd.includes(`:${port}`)) return Number(pid);
  }
  throw new Error(`no redis-server on port ${port}`);
}

interface IntakeResult {
  queue: string;
  seconds: number;
  records: number;
  recordsPerS: number;
  /** CPU per record of this process (the queue client; building the items is included, about 1 µs). */
  clientCpuUsPerRecord: number;
  redisCpuUsPerRecord?: number;
}

const CALLERS = 32;
const PER_CALL = 100;
let serial = 0;
/** `n` new records with distinct ids (counters, not keccak: the queue trusts the id it is given). */
function newItems(n: number): EnqueueItem[] {
  return Array.from({ length: n }, () => {
    const word = (++serial).toString(16).padStart(64, "0");
    const record: InferenceRecord = { inputHash: `0x${word}`, outputHash: `0x${word.slice(1)}f`, settlementType: "settle-batch" };
    return { id: `0x${word.slice(2)}aa` as Hex, record };
  });
}

async function measureIntake(label: string, queue: InferenceQueue, redisPort?: number): Promise<IntakeResult> {
  const callAll = async (until: number) => {
    let records = 0;
    await Promise.all(
      Array.from({ length: CALLERS }, async () => {
        while (performance.now() < until) {
          await queue.enqueue(newItems(PER_CALL));
          records += PER_CALL;
        }
      }),
    );
    return records;
  };
  await callAll(performance.now() + 1000); // warm-up: JIT, connections, scripts
  const pid = redisPort ? redisPid(redisPort) : undefined;
  const cpu0 = process.cpuUsage();
  const redis0 = pid ? processCpuMs(pid) : 0;
  const t0 = performance.now();
  const records = await callAll(t0 + intakeSeconds * 1000);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const result: IntakeResult = {
    queue: label,
    seconds: Math.round(seconds * 10) / 10,
    records,
    recordsPerS: Math.round(records / seconds),
    clientCpuUsPerRecord: Math.round(((cpu.user + cpu.system) / records) * 10) / 10,
    ...(pid ? { redisCpuUsPerRecord: Math.round((((processCpuMs(pid) - redis0) * 1000) / records) * 10) / 10 } : {}),
  };
  console.log(
    `intake ${label}: ${result.recordsPerS} records/s; CPU per record: client ${result.clientCpuUsPerRecord} µs` +
      (result.redisCpuUsPerRecord !== undefined ? `, redis-server ${result.redisCpuUsPerRecord} µs (10 ms ticks)` : ""),
  );
  return result;
}

const intake: IntakeResult[] = [];
if (sections.has("intake")) {
  for (const appendOnly of [true, false]) {
    const redis = await startRedis({ appendOnly });
    const queue = new BullQueue({ connection: redis.url, name: "bench" });
    try {
      intake.push(await measureIntake(appendOnly ? "BullQueue, Redis appendfsync always" : "BullQueue, Redis without append-only file", queue, redis.port));
    } finally {
      await queue.close();
      await redis.stop();
    }
  }
  const dir = mkdtempSync(join(tmpdir(), "bench-intake-"));
  const queue = new LmdbQueue({ path: dir });
  try {
    intake.push(await measureIntake("LmdbQueue (fsync per commit)", queue));
  } finally {
    await queue.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function records(n: number): InferenceRecord[] {
  return Array.from({ length: n }, (_, i) => ({ inputHash: hash(i, "in"), outputHash: hash(i, "out"), settlementType: "settle-batch" }) as InferenceRecord);
}

const tree: { leaves: number; buildMs: number; proofsMs: number }[] = [];
for (const n of [1_024, 16_384, 1_048_576].filter((n) => sections.has("tree") && n <= maxLeaves)) {
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

const gas: { batchSize: number; gasUsed: string; gasPerInference: number }[] = [];
if (sections.has("gas")) {
  const anvil = await startAnvil({ chainId: 84532 });
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
}
const out = join(import.meta.dirname, "results", `inference-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
writeFileSync(out, JSON.stringify({ node: process.version, intake, tree, gas }, null, 2));
console.log(`wrote ${out}`);
