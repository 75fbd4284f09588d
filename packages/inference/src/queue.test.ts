/**
 * One contract suite for every InferenceQueue: LmdbQueue, and BullQueue (BullMQ) on a private
 * redis-server and on a private Redis Cluster (3 primaries with a replica each, every write waiting for
 * a replica). A partitioned BullQueue forms each batch within one partition, so it has checks of its own
 * at the end.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { keccak256, toHex, type Hex } from "viem";
import { startRedis, startRedisCluster, waitFor, type RedisCluster, type RedisServer } from "@facilitator/devnet";
import { hashedPart } from "@facilitator/redis";
import { Redis } from "ioredis";
import { BullQueue } from "./bull-queue.ts";
import { QueueLayout } from "./bull-queue/keys.ts";
import { LmdbQueue } from "./lmdb-queue.ts";
import { buildTree, hexNodes, siblingPath, verifyProof } from "@facilitator/merkle";
import { LeaseLostError, type Batch, type BatchAnchor, type BatchAnchoring, type EnqueueItem, type InferenceQueue } from "./queue.ts";
import { recordId, type InferenceRecord, type SettlementType } from "./records.ts";

interface Harness {
  queue: InferenceQueue;
  /** Another handle on the same store, as a restarted or second worker process would open. */
  another(): InferenceQueue;
}

let redis: RedisServer;
let cluster: RedisCluster;
const REPLICATED = { replicas: 1, timeoutMs: 5_000 };
const dirs: string[] = [];
let n = 0;

const implementations: [string, () => Harness][] = [
  [
    "LmdbQueue",
    () => {
      const path = mkdtempSync(join(tmpdir(), "queue-"));
      dirs.push(path);
      return { queue: new LmdbQueue({ path }), another: () => new LmdbQueue({ path }) };
    },
  ],
  ...(
    [
      ["BullQueue", () => ({ connection: redis.url })],
      ["BullQueue on a Redis Cluster, WAIT 1", () => ({ connection: cluster.url, replication: REPLICATED })],
    ] as const
  ).map(([label, where]): [string, () => Harness] => [
    label,
    () => {
      const name = `contract-${++n}`;
      const make = () => new BullQueue({ ...where(), name, lockDurationMs: 1000, stalledIntervalMs: 300 });
      return { queue: make(), another: make };
    },
  ]),
];

beforeAll(async () => {
  [redis, cluster] = await Promise.all([startRedis(), startRedisCluster()]);
});

afterAll(async () => {
  await Promise.all([redis?.stop(), cluster?.stop()]);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const h = (s: string): Hex => keccak256(toHex(s));
function item(label: string, settlementType: SettlementType = "settle-batch"): EnqueueItem {
  const record: InferenceRecord = { inputHash: h(`in-${label}`), outputHash: h(`out-${label}`), settlementType };
  return { id: recordId(record), record };
}
/** How a batch of these records is anchored: a real tree over their ids, so every stored proof can be checked. */
function anchoringFor(batch: Batch): { anchoring: BatchAnchoring; nodes: Hex[]; treeIndices: Uint32Array } {
  const built = buildTree(["bytes32"], batch.recordIds.map((id) => [id]));
  const nodes = hexNodes(built.nodes);
  const anchor: BatchAnchor = {
    kind: "batch",
    batchId: batch.id,
    transactionHash: h("tx"),
    blockNumber: 7,
    network: "base-sepolia",
    relayAddress: "0x0000000000000000000000000000000000000001",
    root: nodes[0]!,
    batchSize: batch.recordIds.length,
    walrusBlobId: "blob",
  };
  return { anchoring: { anchor, tree: built }, nodes, treeIndices: built.treeIndices };
}

describe.each(implementations)("%s", (_, make) => {
  it("stores a record once: enqueuing a known id changes nothing and returns the same id", async () => {
    const { queue } = make();
    try {
      const a = item("a");
      expect(await queue.enqueue([a, a])).toEqual([
        { id: a.id, created: true, status: "queued" },
        { id: a.id, created: false, status: "queued" },
      ]);
      expect(await queue.enqueue([a])).toEqual([{ id: a.id, created: false, status: "queued" }]);
      expect(await queue.get(a.id)).toMatchObject({ id: a.id, status: "queued", record: a.record });
      expect(await queue.get(h("unknown"))).toBeUndefined();
      const stats = await queue.stats();
      expect(stats.records.queued).toBe(1);
      expect(Date.now() - stats.oldestQueuedAt!).toBeLessThan(60_000);
    } finally {
      await queue.close();
    }
  });

  it("forms batches by size, oldest first, and by age for the rest; lanes stay apart", async () => {
    const { queue } = make();
    try {
      const items = ["1", "2", "3", "4", "5"].map((l) => item(l));
      const single = item("s", "settle");
      for (const it of items) await queue.enqueue([it]);
      await queue.enqueue([single]);

      const first = await queue.formBatch("batch", { maxSize: 3, maxWaitMs: 60_000 });
      expect(first.batch?.recordIds).toEqual(items.slice(0, 3).map((i) => i.id));
      expect(first.batch).toMatchObject({ lane: "batch", state: "open", progress: "formed", attempts: 0 });
      expect(await queue.get(items[0]!.id)).toMatchObject({ status: "batched", batchId: first.batch!.id });

      const waiting = await queue.formBatch("batch", { maxSize: 3, maxWaitMs: 60_000 });
      if (waiting.batch) throw new Error("formed a batch before it was full or old enough");
      expect(waiting.retryInMs).toBeGreaterThan(0);

      const rest = await queue.formBatch("batch", { maxSize: 3, maxWaitMs: 0 });
      expect(rest.batch?.recordIds).toEqual(items.slice(3).map((i) => i.id));
      expect(await queue.formBatch("batch", { maxSize: 3, maxWaitMs: 0 })).toEqual({});

      const s = await queue.formBatch("single", { maxSize: 1, maxWaitMs: 0 });
      expect(s.batch).toMatchObject({ lane: "single", recordIds: [single.id] });
      expect((await queue.stats()).records).toMatchObject({ queued: 0, batched: 6 });
      expect((await queue.stats()).oldestQueuedAt).toBeUndefined();
    } finally {
      await queue.close();
    }
  });

  it("keeps gateway (RSA-PSS) records in a lane of their own, enqueued in the same call as the others", async () => {
    const { queue } = make();
    try {
      const gatewayItem = (label: string): EnqueueItem => {
        const record: InferenceRecord = { ...item(label).record, teeId: h("gw"), teeTimestamp: "1", teeSignature: `0x${"ab".repeat(256)}`, signatureScheme: "rsa-pss-sha256" };
        return { id: recordId(record), record };
      };
      const [g1, g2, plain] = [gatewayItem("g1"), gatewayItem("g2"), item("plain")];
      await queue.enqueue([g1, plain, g2]);
      const batch = await queue.formBatch("batch", { maxSize: 10, maxWaitMs: 0 });
      expect(batch.batch?.recordIds).toEqual([plain.id]);
      const gateway = await queue.formBatch("gateway", { maxSize: 10, maxWaitMs: 0 });
      expect(gateway.batch).toMatchObject({ lane: "gateway", recordIds: [g1.id, g2.id] });
      expect(await queue.get(g1.id)).toMatchObject({ status: "batched", record: g1.record });
    } finally {
      await queue.close();
    }
  });

  it("leases a batch to one holder, versions each save, and completes it with every record's anchor", async () => {
    const { queue } = make();
    try {
      const items = ["x", "y", "z"].map((l) => item(l));
      await queue.enqueue(items);
      const { batch } = await queue.formBatch("batch", { maxSize: 3, maxWaitMs: 0 });
      const leased = await queue.leaseBatch();
      expect(leased?.id).toBe(batch!.id);
      expect(await queue.leaseBatch()).toBeUndefined();

      const saved = await queue.saveBatch({ ...leased!, progress: "uploaded", root: h("root"), blobId: "blob" });
      expect(saved.version).toBe(leased!.version + 1);
      await expect(queue.saveBatch({ ...leased!, progress: "signed" })).rejects.toBeInstanceOf(LeaseLostError);
      expect(await queue.getBatch(batch!.id)).toMatchObject({ progress: "uploaded", root: h("root"), blobId: "blob" });

      const { anchoring, nodes, treeIndices } = anchoringFor(saved);
      await queue.completeBatch(saved, anchoring);
      // Each record's anchor is the batch's with its own index and proof, read off the stored nodes.
      const entries = await queue.getMany(saved.recordIds);
      saved.recordIds.forEach((id, i) => {
        const proof = siblingPath(nodes, treeIndices[i]!);
        expect(entries[i]).toMatchObject({ id, status: "anchored", batchId: saved.id, anchor: { ...anchoring.anchor, index: i, proof } });
        expect(verifyProof(nodes[0]!, ["bytes32"], [id], proof)).toBe(true);
      });
      expect(await queue.get(saved.recordIds[1]!)).toEqual(entries[1]);
      expect(await queue.getBatch(batch!.id)).toMatchObject({ state: "anchored" });
      expect(await queue.leaseBatch()).toBeUndefined();
      expect(await queue.stats()).toMatchObject({ records: { queued: 0, batched: 0, anchored: 3, failed: 0 }, openBatches: 0 });
      // An anchored record posted again stays anchored, once.
      expect(await queue.enqueue([items[0]!])).toEqual([{ id: items[0]!.id, created: false, status: "anchored" }]);
      expect(await queue.formBatch("batch", { maxSize: 1, maxWaitMs: 0 })).toEqual({});
    } finally {
      await queue.close();
    }
  });

  it("answers calls made together each for its own records, as if made one after the other", async () => {
    const { queue } = make();
    try {
      const [a, b, c, d] = ["t1", "t2", "t3", "t4"].map((l) => item(l));
      const answers = await Promise.all([queue.enqueue([a!, b!]), queue.enqueue([b!, c!]), queue.enqueue([a!]), queue.enqueue([d!])]);
      expect(answers).toEqual([
        [
          { id: a!.id, created: true, status: "queued" },
          { id: b!.id, created: true, status: "queued" },
        ],
        [
          { id: b!.id, created: false, status: "queued" },
          { id: c!.id, created: true, status: "queued" },
        ],
        [{ id: a!.id, created: false, status: "queued" }],
        [{ id: d!.id, created: true, status: "queued" }],
      ]);
      expect((await queue.stats()).records.queued).toBe(4);
      expect((await queue.formBatch("batch", { maxSize: 10, maxWaitMs: 0 })).batch?.recordIds).toEqual([a!.id, b!.id, c!.id, d!.id]);
    } finally {
      await queue.close();
    }
  });

  it("hands the worker the records themselves, in the order asked, and nothing for an unknown id", async () => {
    const { queue } = make();
    try {
      const items = ["r1", "r2", "r3"].map((l) => item(l));
      await queue.enqueue(items);
      const unknown = item("never-stored").id;
      expect(await queue.records([items[2]!.id, unknown, items[0]!.id])).toEqual([items[2]!.record, undefined, items[0]!.record]);
      expect(await queue.records([])).toEqual([]);
    } finally {
      await queue.close();
    }
  });

  it("completes a single-record batch with the batch's anchor alone (no index, no proof)", async () => {
    const { queue } = make();
    try {
      const one = item("lone", "settle");
      await queue.enqueue([one]);
      await queue.formBatch("single", { maxSize: 1, maxWaitMs: 0 });
      const leased = (await queue.leaseBatch())!;
      const anchor: BatchAnchor = { kind: "single", batchId: leased.id, transactionHash: h("tx1"), blockNumber: 9, network: "base-sepolia", relayAddress: "0x0000000000000000000000000000000000000001" };
      await queue.completeBatch(leased, { anchor });
      expect(await queue.get(one.id)).toEqual({ id: one.id, record: one.record, status: "anchored", enqueuedAt: expect.any(Number), batchId: leased.id, anchor });
    } finally {
      await queue.close();
    }
  });

  it("holds a deferred batch until its retry time", async () => {
    const { queue } = make();
    try {
      await queue.enqueue([item("d")]);
      await queue.formBatch("batch", { maxSize: 1, maxWaitMs: 0 });
      const leased = await queue.leaseBatch();
      await queue.deferBatch({ ...leased!, failures: 1, retryAt: Date.now() + 400, lastError: { reason: "walrus_unavailable", message: "504" } });
      expect(await queue.leaseBatch()).toBeUndefined();
      const again = await waitFor(() => queue.leaseBatch(), "a batch to lease", 10_000);
      expect(again).toMatchObject({ id: leased!.id, failures: 1, lastError: { reason: "walrus_unavailable" } });
    } finally {
      await queue.close();
    }
  });

  it("parks a failing batch with its records failed, and re-opens it on retry", async () => {
    const { queue } = make();
    try {
      const items = [item("p1"), item("p2")];
      await queue.enqueue(items);
      await queue.formBatch("batch", { maxSize: 2, maxWaitMs: 0 });
      const leased = await queue.leaseBatch();
      const error = { reason: "relayer_not_authorized", message: "role revoked" };
      await queue.parkBatch({ ...leased!, attempts: 3 }, error);
      expect(await queue.get(items[0]!.id)).toMatchObject({ status: "failed", error });
      expect(await queue.stats()).toMatchObject({ records: { failed: 2, batched: 0 }, parkedBatches: 1, openBatches: 0 });
      expect(await queue.leaseBatch()).toBeUndefined();

      expect(await queue.retryParked()).toBe(1);
      expect(await queue.get(items[1]!.id)).toMatchObject({ status: "batched" });
      expect((await queue.get(items[1]!.id))?.error).toBeUndefined();
      expect(await queue.stats()).toMatchObject({ records: { failed: 0, batched: 2 }, parkedBatches: 0, openBatches: 1 });
      const again = await waitFor(() => queue.leaseBatch(), "a batch to lease", 10_000);
      expect(again).toMatchObject({ id: leased!.id, state: "open", attempts: 0 });
      expect(await queue.retryParked()).toBe(0);
    } finally {
      await queue.close();
    }
  });

  it("lets another handle resume a batch whose holder vanished, from its recorded step", async () => {
    const h1 = make();
    await h1.queue.enqueue([item("r1"), item("r2")]);
    await h1.queue.formBatch("batch", { maxSize: 2, maxWaitMs: 0 });
    const leased = await h1.queue.leaseBatch();
    await h1.queue.saveBatch({ ...leased!, progress: "uploaded", root: h("r"), blobId: "b" });
    await h1.queue.close(); // the holder dies without giving the batch back
    const q2 = h1.another();
    try {
      const resumed = await waitFor(() => q2.leaseBatch(), "a batch to lease", 10_000);
      expect(resumed).toMatchObject({ id: leased!.id, progress: "uploaded", root: h("r"), blobId: "b" });
    } finally {
      await q2.close();
    }
  });
});

describe("BullQueue on a Redis Cluster with 3 partitions", () => {
  const open = (name: string) => new BullQueue({ connection: cluster.url, name, partitions: 3, replication: REPLICATED, lockDurationMs: 1000, stalledIntervalMs: 300 });

  it("spreads records over the primaries, batches each partition's own records, and finds, counts and anchors every one once", async () => {
    const name = `partitions-${++n}`;
    const queue = open(name);
    const other = open(name);
    try {
      const items = Array.from({ length: 30 }, (_, i) => item(`part-${i}`));
      expect((await queue.enqueue(items)).every((r) => r.created)).toBe(true);
      expect((await other.enqueue(items.slice(0, 5))).map((r) => r.created)).toEqual([false, false, false, false, false]);
      expect((await other.getMany(items.map((i) => i.id))).map((e) => e?.status)).toEqual(items.map(() => "queued"));
      expect(await other.stats()).toMatchObject({ records: { queued: 30 }, openBatches: 0 });

      const primaries = new Set(await Promise.all(items.map((i) => cluster.primaryOf(partitionTagOf(name, i.id)))));
      expect(primaries.size).toBe(3);

      const batches: Batch[] = [];
      for (;;) {
        const formed = await queue.formBatch("batch", { maxSize: 4, maxWaitMs: 0 });
        if (!formed.batch) break;
        batches.push(formed.batch);
      }
      expect(batches.flatMap((b) => b.recordIds).sort()).toEqual(items.map((i) => i.id).sort());
      for (const b of batches) expect(new Set(b.recordIds.map((id) => partitionTagOf(name, id))).size).toBe(1);
      expect(await other.stats()).toMatchObject({ records: { queued: 0, batched: 30 }, openBatches: batches.length });

      // Leased by either handle, each batch exactly once; completing one anchors its records.
      const leased = new Set<string>();
      for (;;) {
        const b = (await queue.leaseBatch()) ?? (await other.leaseBatch());
        if (!b) break;
        expect(leased.has(b.id)).toBe(false);
        leased.add(b.id);
        await (b.id.length % 2 ? queue : other).completeBatch(b, anchoringFor(b).anchoring);
      }
      expect(leased).toEqual(new Set(batches.map((b) => b.id)));
      expect(await queue.stats()).toMatchObject({ records: { batched: 0, anchored: 30 }, openBatches: 0 });
      const anchored = await other.getMany(items.map((i) => i.id));
      for (const [n, e] of anchored.entries()) expect(verifyProof(e!.anchor!.root!, ["bytes32"], [items[n]!.id], e!.anchor!.proof!)).toBe(true);
    } finally {
      await Promise.all([queue.close(), other.close()]);
    }
  });
});

describe("BullQueue and records anchored by an earlier version", () => {
  it("reads a record that holds its whole anchor (each record kept its own proof until 2026-12)", async () => {
    const name = `legacy-${++n}`;
    const queue = new BullQueue({ connection: redis.url, name });
    const raw = new Redis(redis.url);
    try {
      const old = item("legacy");
      await queue.enqueue([old]);
      const anchor = { kind: "batch", batchId: "b-1", transactionHash: h("tx"), blockNumber: 3, network: "base-sepolia", relayAddress: "0x0000000000000000000000000000000000000001", root: h("r"), index: 0, proof: [h("p")], batchSize: 1, walrusBlobId: "blob" };
      await raw.hset(new QueueLayout("bull", name, 1).partitions[0]!.record(old.id), "status", "anchored", "batchId", "b-1", "anchor", JSON.stringify(anchor));
      expect(await queue.get(old.id)).toMatchObject({ status: "anchored", anchor });
    } finally {
      raw.disconnect();
      await queue.close();
    }
  });

  it("answers an error, not a wrong proof, for a record whose batch's tree nodes were lost", async () => {
    const name = `lost-nodes-${++n}`;
    const queue = new BullQueue({ connection: redis.url, name });
    const raw = new Redis(redis.url);
    try {
      const items = ["n1", "n2"].map((l) => item(l));
      await queue.enqueue(items);
      await queue.formBatch("batch", { maxSize: 2, maxWaitMs: 0 });
      const leased = (await queue.leaseBatch())!;
      await queue.completeBatch(leased, anchoringFor(leased).anchoring);
      expect((await queue.get(items[0]!.id))!.anchor!.proof).toHaveLength(1);
      await raw.del(new QueueLayout("bull", name, 1).partitions[0]!.batchNodes(leased.id));
      await expect(queue.get(items[0]!.id)).rejects.toThrow(/tree nodes are missing/);
    } finally {
      raw.disconnect();
      await queue.close();
    }
  });

  it("takes over an open batch that keeps its ids in its doc, and anchors every one of its records", async () => {
    const name = `legacy-${++n}`;
    const queue = new BullQueue({ connection: redis.url, name });
    const raw = new Redis(redis.url);
    try {
      const items = ["l1", "l2", "l3"].map((l) => item(l));
      await queue.enqueue(items);
      const { batch } = await queue.formBatch("batch", { maxSize: 3, maxWaitMs: 0 });
      // As an earlier version stored it: the ids inside doc, no ids field.
      const key = new QueueLayout("bull", name, 1).partitions[0]!.batch(batch!.id);
      await raw.hset(key, "doc", JSON.stringify(batch));
      await raw.hdel(key, "ids");
      const leased = (await queue.leaseBatch())!;
      expect(leased.recordIds).toEqual(items.map((i) => i.id));
      const saved = await queue.saveBatch({ ...leased, progress: "uploaded", root: h("root"), blobId: "blob" });
      expect((await queue.getBatch(batch!.id))!.recordIds).toEqual(items.map((i) => i.id));
      await queue.completeBatch(saved, anchoringFor(saved).anchoring);
      expect((await queue.getMany(items.map((i) => i.id))).map((e) => e?.status)).toEqual(["anchored", "anchored", "anchored"]);
    } finally {
      raw.disconnect();
      await queue.close();
    }
  });
});

/** The hash tag of a record's partition in a 3-partition queue named `name`. */
function partitionTagOf(name: string, id: Hex): string {
  const layout = new QueueLayout("{bull}", name, 3);
  return hashedPart(layout.partitions[layout.recordPartition(id)]!.record(id));
}
