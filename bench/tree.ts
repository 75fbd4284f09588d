/**
 * Merkle tree numbers: OpenZeppelin's StandardMerkleTree against @facilitator/merkle (same root, checked
 * here for every size both build), the batch as the worker builds it (inline and in the worker thread,
 * dump included), dump sizes, and the auditor's checks of a batch. Results in bench/results/tree-*.json.
 *
 *   pnpm exec tsx bench/tree.ts [--sizes 1024,16384,65536,1048576] [--oz-max 65536] [--audit 65536]
 *
 * Leaves are leaf encoding v2 as the facilitator batches them, every other one TEE-signed (a 65-byte
 * signature in the leaf); OpenZeppelin is skipped above --oz-max (1,048,576 leaves would take it about
 * 350 s). Every timing is one run after a warm-up build; "other work" is the CPU the rest of the machine
 * used meanwhile, in cores, since this machine is shared.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { privateKeyToAccount } from "viem/accounts";
import { keccak256, toHex, type Address, type Hex } from "viem";
import { checkTeeSignature, parseBatchDump, rebuildTree, type ChainReader } from "@facilitator/auditor";
import { auditBatchEvent } from "../packages/auditor/src/anchor-checks.ts";
import type { BatchEvent } from "../packages/auditor/src/chain.ts";
import { auditContext, type AuditContext } from "../packages/auditor/src/context.ts";
import { buildTree, buildTreeOffThread, hexNodes, keccakBackend, keccakReady, packInParts, stopTreeThread, TREE_THREADS } from "@facilitator/merkle";
import { batchValuesV2, StandardMerkleTree, TYPES_V2 } from "@facilitator/merkle/testing";
import { buildBatchTree, buildBatchTreeOffThread, signTeeRecord, type InferenceRecord } from "@facilitator/inference";
import { cpuMs, machineBusyMs } from "./lib/cpu.ts";

const option = (name: string, fallback: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const sizes = option("--sizes", "1024,16384,65536,1048576").split(",").map(Number);
const ozMax = Number(option("--oz-max", "65536"));
const auditSize = Number(option("--audit", "65536"));

/** Runs `f` once, timed, with the CPU the rest of the machine spent meanwhile (in cores). */
async function timed<T>(f: () => T | Promise<T>): Promise<{ value: T; ms: number; otherCores: number }> {
  const [cpu0, busy0, t0] = [cpuMs(process.pid), machineBusyMs(), performance.now()];
  const value = await f();
  const ms = performance.now() - t0;
  const other = machineBusyMs() - busy0 - (cpuMs(process.pid) - cpu0);
  return { value, ms, otherCores: Math.max(0, other / ms) };
}
const round = (ms: number) => (ms >= 100 ? Math.round(ms) : Math.round(ms * 10) / 10);

/** The records behind batchValuesV2's values (the facilitator's leaves, every other one signed). */
function records(n: number, salt: string): InferenceRecord[] {
  return batchValuesV2(n, salt).map(([teeId, inputHash, outputHash, timestamp, , , signature]) => ({
    inputHash: inputHash as Hex,
    outputHash: outputHash as Hex,
    settlementType: "settle-batch" as const,
    ...(signature !== "0x" ? { teeId: teeId as Hex, teeTimestamp: timestamp!, teeSignature: signature as Hex } : {}),
  }));
}

await keccakReady;
console.log(`keccak on ${keccakBackend()}; ${sizes.join(", ")} leaves; OpenZeppelin up to ${ozMax}`);
const warm = batchValuesV2(2_048, "warm-up");
buildTree(TYPES_V2, warm); // JIT and the WebAssembly hasher warm
// The worker thread starts once per process (tsx and the hasher load in it); measured apart from the builds.
const threadStart = await timed(async () => buildTreeOffThread(TYPES_V2, await packInParts(TYPES_V2, warm)));
console.log(`${TREE_THREADS} worker threads started and built 2,048 leaves in ${round(threadStart.ms)} ms`);

/** The auditor's checks of one batch event, from a dump in hand: no chain (its reads fail at once), no blob id check. */
async function auditTimes(n: number) {
  const rs = records(n, "audit");
  const ids = rs.map((_, i) => keccak256(toHex(`audit id${i}`)));
  const rows = [];
  for (const compactAbove of [n, 0]) {
    const batch = buildBatchTree(rs, ids, "2025-01-01T00:00:00.000Z", { compactAbove });
    const bytes = new TextEncoder().encode(batch.dumpJson);
    const parse = await timed(() => parseBatchDump(bytes));
    if (!parse.value.ok) throw new Error(parse.value.error);
    const parsed = parse.value.value;
    const rebuild = await timed(() => rebuildTree(parsed.leaves, parsed.treeIndices));
    const noChain = new Proxy({}, { get: () => () => Promise.reject(new Error("no chain in this benchmark")) }) as unknown as ChainReader;
    const config = { rpcUrl: "http://unused", relayAddress: "0x0000000000000000000000000000000000000001", aggregatorUrl: "http://unused", blobIdCheck: "none" } as const;
    const ctx: AuditContext = { ...auditContext(config, noChain), getBlob: async () => ({ ok: true, bytes }) };
    const event: BatchEvent = { root: batch.root, batchSize: BigInt(n), blobId: "bench", emitter: ctx.relay, transactionHash: keccak256("0x01"), blockNumber: 1n, logIndex: 0 };
    const all = await timed(() => auditBatchEvent(ctx, { kind: "batch", root: batch.root }, event, "bench", []));
    const checks = Object.fromEntries(all.value.checks.map((c) => [c.name, `${c.ok ? "ok" : c.skipped ? "n/a" : "FAIL"}: ${c.detail}`]));
    if (!all.value.checks.find((c) => c.name === "proof")!.ok || !all.value.checks.find((c) => c.name === "root-matches-event")!.ok) throw new Error(JSON.stringify(checks));
    const row = { leaves: n, dump: JSON.parse(batch.dumpJson).tree.format, dumpBytes: bytes.length, parseMs: round(parse.ms), rebuildMs: round(rebuild.ms), checksMs: round(all.ms), otherCores: Math.round(all.otherCores * 100) / 100, checks };
    rows.push(row);
    console.log(JSON.stringify({ ...row, checks: undefined }));
  }
  return rows;
}
// First, on a heap the builds have not grown: an auditor runs in a process of its own.
const audit = auditSize > 0 ? await auditTimes(auditSize) : [];

interface BuildRow {
  leaves: number;
  /** StandardMerkleTree.of. */
  ozMs?: number;
  /** buildTree: inline, one thread. */
  treeMs: number;
  /** buildTreeOffThread: the same tree from the packed values, hashed in the worker threads. */
  threadTreeMs: number;
  /** buildBatchTreeOffThread, as the worker builds a batch: records packed, tree in the threads, proofs' nodes and dump JSON. */
  batchMs: number;
  /** Longest the event loop stood still during that batch build. */
  batchLoopBlockedMs: number;
  standardDumpBytes?: number;
  compactDumpBytes: number;
  otherCores: number;
}
const builds: BuildRow[] = [];
for (const n of sizes) {
  const values = batchValuesV2(n, `bench${n}`);
  const oz = n <= ozMax ? await timed(() => StandardMerkleTree.of(values, TYPES_V2)) : undefined;
  const tree = await timed(() => buildTree(TYPES_V2, values));
  const root = hexNodes(tree.value.nodes.subarray(0, 32))[0];
  if (oz && oz.value.root !== root) throw new Error(`${n} leaves: our root ${root} is not OpenZeppelin's ${oz.value.root}`);
  const parts = await packInParts(TYPES_V2, values);
  const threadTree = await timed(() => buildTreeOffThread(TYPES_V2, parts));
  if (!threadTree.value.nodes.equals(tree.value.nodes)) throw new Error(`${n} leaves: the threads' tree differs`);
  const rs = records(n, `bench${n}`);
  const ids = rs.map((_, i) => keccak256(toHex(`id${i}`)));
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  await new Promise((resolve) => setTimeout(resolve, 20)); // the histogram misses a stall before its first tick
  const thread = await timed(() => buildBatchTreeOffThread(rs, ids, "2025-01-01T00:00:00.000Z"));
  delay.disable();
  if (thread.value.root !== root) throw new Error(`${n} leaves: the batch's root differs from the tree's`);
  const compactBytes = Buffer.byteLength(n > 16_384 ? thread.value.dumpJson : buildBatchTree(rs, ids, "2025-01-01T00:00:00.000Z", { compactAbove: 0 }).dumpJson);
  // A standard dump of a million leaves is past V8's longest string (2^29 - 24 characters): not built.
  const standardBytes = n <= 65_536 ? Buffer.byteLength(n <= 16_384 ? thread.value.dumpJson : buildBatchTree(rs, ids, "2025-01-01T00:00:00.000Z", { compactAbove: n }).dumpJson) : undefined;
  const row: BuildRow = {
    leaves: n,
    ...(oz ? { ozMs: round(oz.ms) } : {}),
    treeMs: round(tree.ms),
    threadTreeMs: round(threadTree.ms),
    batchMs: round(thread.ms),
    batchLoopBlockedMs: round(delay.max / 1e6),
    ...(standardBytes ? { standardDumpBytes: standardBytes } : {}),
    compactDumpBytes: compactBytes,
    otherCores: Math.round(Math.max(tree.otherCores, threadTree.otherCores, thread.otherCores) * 100) / 100,
  };
  builds.push(row);
  console.log(JSON.stringify(row));
}
await stopTreeThread();


/** What one TEE signature check costs the auditor (viem's pure-JS recovery), on genuinely signed leaves. */
async function teeCheckMs(): Promise<number> {
  const tee = { teeId: keccak256(toHex("bench tee")), privateKey: keccak256(toHex("bench tee key")) };
  const signer: Address = privateKeyToAccount(tee.privateKey).address;
  const leaves = records(256, "tee").map((r) => signTeeRecord(tee, { ...r, teeTimestamp: "1700000000" }));
  const parsed = parseBatchDump(new TextEncoder().encode(buildBatchTree(leaves, leaves.map((_, i) => `tee${i}`), "2025-01-01T00:00:00.000Z").dumpJson));
  if (!parsed.ok) throw new Error(parsed.error);
  const t = await timed(() => Promise.all(parsed.value.leaves.map((l) => checkTeeSignature(l, { [tee.teeId]: signer }))));
  if (t.value.some((v) => v.status !== "valid")) throw new Error("a genuine TEE signature did not verify");
  return Math.round((t.ms / leaves.length) * 1000) / 1000;
}
const teeMsPerLeaf = await teeCheckMs();
console.log(`TEE signature check: ${teeMsPerLeaf} ms a leaf`);

const out = join(import.meta.dirname, "results", `tree-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
writeFileSync(out, JSON.stringify({ node: process.version, keccak: keccakBackend(), threadStartMs: round(threadStart.ms), builds, audit, teeMsPerLeaf }, null, 2));
console.log(`wrote ${out}`);
