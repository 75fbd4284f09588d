/**
 * 10,000 TEE-signed records through the service (LmdbQueue) onto anvil via the local Walrus
 * service: the expected number of batches, every proof checked off-chain and by the contract, every
 * tree fetched by its blob id reproducing its on-chain root, each root emitted once. The full batches
 * (1,024) are built in the worker thread and stored as compact dumps, the last (784) inline as a
 * standard dump.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createPublicClient, decodeEventLog, http, parseAbiItem, type Hex } from "viem";
import { LmdbQueue } from "./lmdb-queue.ts";
import { leafStruct, loadBatchDump, verifyLeafProof } from "./merkle.ts";
import { SETTLEMENT_RELAY_ABI } from "./relay.ts";
import { InferenceService, type RecordView } from "./service.ts";
import { makeRecords, startTestWorld, waitFor, type TestWorld } from "./testing/world.ts";

const TOTAL = 10_000;
const BATCH_SIZE = 1024;

let world: TestWorld;
let dir: string;
let service: InferenceService;

beforeAll(async () => {
  world = await startTestWorld();
  dir = mkdtempSync(join(tmpdir(), "pipeline-"));
  service = new InferenceService({ queue: new LmdbQueue({ path: dir }), validation: { ...world.validation, requireTeeSignature: true } });
});

afterAll(async () => {
  await service?.close();
  await world?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("10,000 records through the service", () => {
  it("are all anchored in ceil(10000/1024) batches, with proofs that verify everywhere", { timeout: 240_000 }, async () => {
    const t0 = Date.now();
    const phase = (name: string) => console.log(`${name}: ${Date.now() - t0} ms`);
    const records = makeRecords(TOTAL, "pipeline", { tee: world.tee });
    const ids: Hex[] = [];
    for (let i = 0; i < TOTAL; i += 1000) {
      const results = await service.submit(records.slice(i, i + 1000));
      for (const r of results) {
        if (!("id" in r)) throw new Error(`refused: ${JSON.stringify(r)}`);
        ids.push(r.id);
      }
    }
    phase("submitted");
    // A repeat is the same record: same id, nothing new stored.
    expect(await service.submit([records[0]])).toEqual([{ id: ids[0], status: "queued", duplicate: true }]);

    const worker = service.startWorker({ relay: world.relay(), blobs: world.blobs(), batchSize: BATCH_SIZE, batchTimeoutMs: 100, pollIntervalMs: 20, compactDumpAbove: 1000, treeThreadFrom: 1000 });
    await waitFor(async () => (await service.metrics()).records.anchored === TOTAL, "all records anchored", 120_000);
    await worker.stop();
    phase("anchored");

    const views = (await Promise.all(ids.map((id) => service.status(id)))) as RecordView[];
    expect(views.every((v) => v.status === "anchored")).toBe(true);
    const batches = new Map<Hex, RecordView[]>();
    for (const v of views) batches.set(v.root!, [...(batches.get(v.root!) ?? []), v]);
    expect(batches.size).toBe(Math.ceil(TOTAL / BATCH_SIZE));
    expect([...batches.values()].map((b) => b.length).sort((a, b) => b - a)).toEqual([...Array(9).fill(1024), TOTAL - 9 * 1024]);

    // Off-chain: each proof against its root.
    views.forEach((v, i) => {
      expect(v.batchSize).toBe(batches.get(v.root!)!.length);
      expect(verifyLeafProof(v.root!, records[i]!, v.proof!)).toBe(true);
    });

    phase("verified off-chain");
    // On chain: each proof through verifyInference, in JSON-RPC batches.
    const batched = createPublicClient({ transport: http(world.anvil.rpcUrl, { batch: { batchSize: 500 } }) });
    for (let i = 0; i < TOTAL; i += 2000) {
      const checks = await Promise.all(
        views.slice(i, i + 2000).map((v, j) => {
          return batched.readContract({
            address: world.relayAddress,
            abi: SETTLEMENT_RELAY_ABI,
            functionName: "verifyInference",
            args: [v.root!, v.proof!, leafStruct(records[i + j]!)],
          });
        }),
      );
      expect(checks.every(Boolean)).toBe(true);
    }

    phase("verified on chain");
    // Each root emitted once, by the relay, naming the blob whose tree reproduces it.
    const logs = await world.client.getLogs({
      address: world.relayAddress,
      event: parseAbiItem("event BatchSettlement(bytes32 indexed merkleRoot, uint256 batchSize, bytes walrusBlobId)"),
      fromBlock: 0n,
    });
    expect(logs.map((l) => l.args.merkleRoot).sort()).toEqual([...batches.keys()].sort());
    const blobs = world.blobs();
    for (const [root, members] of batches) {
      const first = members[0]!;
      const receipt = await world.client.getTransactionReceipt({ hash: first.transactionHash! });
      const event = decodeEventLog({ abi: SETTLEMENT_RELAY_ABI, ...receipt.logs[0]! });
      expect(event.args).toMatchObject({ merkleRoot: root, batchSize: BigInt(members.length) });
      expect(Buffer.from((event.args as { walrusBlobId: Hex }).walrusBlobId.slice(2), "hex").toString()).toBe(first.walrusBlobId);
      const { dump, root: rebuilt, stored } = loadBatchDump(await blobs.read(first.walrusBlobId!));
      expect(rebuilt).toBe(root);
      expect(stored).toBe(members.length > 1000 ? "compact-v1" : "standard-v1");
      for (const m of members) expect(dump.recordIds[m.index!]).toBe(m.id);
    }
    phase("trees checked");
  });
});
