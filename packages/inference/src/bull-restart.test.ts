/**
 * Redis lost while records flow in through one process's queue handle and a worker anchors them
 * through another, with two batches held in flight at the moment it goes: nothing acknowledged is
 * lost, nothing is anchored twice, no root is emitted twice.
 *  - one redis-server (append-only, fsync always) SIGKILLed and restarted on its append-only file;
 *  - a Redis Cluster (3 primaries, a replica each; the queue in 3 partitions, every write waiting for a
 *    replica): the primary serving BullMQ's anchor queue SIGKILLed and its replica promoted.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAbiItem, type Hex } from "viem";
import { startRedis, startRedisCluster, type RedisCluster, type RedisServer } from "@facilitator/devnet";
import { BullQueue, type BullQueueOptions } from "./bull-queue.ts";
import type { Batch } from "./queue.ts";
import { InferenceService, InferenceUnavailableError } from "./service.ts";
import type { WorkerStep } from "./worker.ts";
import { makeRecords, startTestWorld, waitFor, type TestWorld } from "./testing/world.ts";

let world: TestWorld;
let redis: RedisServer;
let cluster: RedisCluster;

beforeAll(async () => {
  [world, redis, cluster] = await Promise.all([startTestWorld(), startRedis({ appendOnly: true }), startRedisCluster()]);
});

afterAll(async () => {
  await Promise.all([world?.stop(), redis?.stop(), cluster?.stop()]);
});

let runs = 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Holds the first `count` batches to reach `step` there; `held` resolves once they all wait, and
 * `release` lets them go on (into whatever Redis is then).
 */
function holdBatches(count: number, step: WorkerStep) {
  const waiting = new Set<string>();
  let allHeld!: () => void;
  let release!: () => void;
  const held = new Promise<void>((r) => (allHeld = r));
  const released = new Promise<void>((r) => (release = r));
  return {
    held,
    release,
    async onStep(s: WorkerStep, batch: Batch) {
      if (s !== step || waiting.size >= count) return;
      waiting.add(batch.id);
      if (waiting.size === count) allHeld();
      await released;
    },
  };
}

const outages: [string, () => BullQueueOptions, () => Promise<void>][] = [
  [
    "a redis-server SIGKILLed and restarted on its append-only file",
    () => ({ connection: redis.url }),
    async () => {
      redis.kill(); // a crash: no shutdown save, only the append-only file
      await sleep(300);
      await redis.restart();
    },
  ],
  [
    "the Redis Cluster primary of the anchor queue SIGKILLed, its replica promoted",
    () => ({ connection: cluster.url, partitions: 3, replication: { replicas: 1, timeoutMs: 5_000 } }),
    async () => {
      const primary = await cluster.primaryOf("{bull}");
      await cluster.killPrimary(primary);
      await cluster.restart(primary);
    },
  ],
];

describe.each(outages)("BullQueue across %s", (_label, where, outage) => {
  it("loses no acknowledged record and anchors each once, with two batches in flight when Redis goes", { timeout: 180_000 }, async () => {
    const name = `restart-${++runs}`;
    const make = () => new BullQueue({ ...where(), name, lockDurationMs: 1000, stalledIntervalMs: 300 });
    const api = new InferenceService({ queue: make(), validation: world.validation });
    const backend = new InferenceService({ queue: make(), validation: world.validation });
    const gate = holdBatches(2, "uploaded");
    const worker = backend.startWorker({
      relay: world.relay(),
      blobs: world.blobs(),
      batchSize: 25,
      batchTimeoutMs: 50,
      pollIntervalMs: 20,
      backoffBaseMs: 50,
      backoffMaxMs: 200,
      batchesInFlight: 3,
      onStep: (step, batch) => gate.onStep(step, batch),
    });
    const acked = new Set<Hex>();
    let down: Promise<void> | undefined;
    try {
      const rounds = 30;
      for (let round = 0; round < rounds; round++) {
        if (round === 10) {
          await gate.held; // two batches uploaded and waiting to sign: both in flight
          down = (async () => {
            const going = outage();
            gate.release(); // they go on into the outage
            await going;
          })();
        }
        const records = makeRecords(20, `${name}-${round}`, { tee: world.tee });
        for (;;) {
          try {
            for (const r of await api.submit(records)) if ("id" in r) acked.add(r.id);
            break;
          } catch (e) {
            if (!(e instanceof InferenceUnavailableError)) throw e;
            await sleep(50); // not acknowledged: the client retries the same records
          }
        }
        await sleep(20);
      }
      await down;
      expect(acked.size).toBe(30 * 20);

      await waitFor(async () => (await api.metrics().catch(() => undefined))?.records.anchored === acked.size, "every acknowledged record anchored", 120_000, 200);
      const views = await Promise.all([...acked].map((id) => api.status(id)));
      expect(views.filter((v) => v?.status !== "anchored")).toEqual([]);

      const logs = await world.client.getLogs({
        address: world.relayAddress,
        event: parseAbiItem("event BatchSettlement(bytes32 indexed merkleRoot, uint256 batchSize, bytes walrusBlobId)"),
        fromBlock: 0n,
      });
      const roots = new Set(views.map((v) => v!.root));
      const mine = logs.filter((l) => roots.has(l.args.merkleRoot));
      expect(mine).toHaveLength(roots.size); // no root twice
      expect(mine.reduce((sum, l) => sum + Number(l.args.batchSize), 0)).toBe(acked.size); // no record twice
    } finally {
      gate.release();
      await down?.catch(() => undefined);
      await worker.stop();
      await backend.close();
      await api.close();
    }
  });
});
