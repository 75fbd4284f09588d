/**
 * Redis (append-only, fsync always) killed and restarted while records flow in through one process's
 * queue handle and a worker anchors them through another: nothing acknowledged is lost, nothing is
 * anchored twice.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAbiItem, type Hex } from "viem";
import { startRedis, type RedisServer } from "@facilitator/devnet";
import { BullQueue } from "./bull-queue.ts";
import { InferenceService, InferenceUnavailableError } from "./service.ts";
import { makeRecords, startTestWorld, waitFor, type TestWorld } from "./testing/world.ts";

let world: TestWorld;
let redis: RedisServer;

beforeAll(async () => {
  [world, redis] = await Promise.all([startTestWorld(), startRedis({ appendOnly: true })]);
});

afterAll(async () => {
  await Promise.all([world?.stop(), redis?.stop()]);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("BullQueue across a Redis restart", () => {
  it("loses no acknowledged record and anchors each once", { timeout: 120_000 }, async () => {
    const queue = () => new BullQueue({ connection: redis.url, name: "restart", lockDurationMs: 1000, stalledIntervalMs: 300 });
    const api = new InferenceService({ queue: queue(), validation: world.validation });
    const backend = new InferenceService({ queue: queue(), validation: world.validation });
    const worker = backend.startWorker({ relay: world.relay(), blobs: world.blobs(), batchSize: 25, batchTimeoutMs: 50, pollIntervalMs: 20, backoffBaseMs: 50, backoffMaxMs: 200 });
    const acked = new Set<Hex>();
    let outage: Promise<void> | undefined;
    try {
      const rounds = 30;
      for (let round = 0; round < rounds; round++) {
        if (round === 10) {
          outage = (async () => {
            redis.kill(); // a crash: no shutdown save, only the append-only file
            await sleep(300);
            await redis.restart();
          })();
        }
        const records = makeRecords(20, `restart-${round}`, { tee: world.tee });
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
      await outage;
      expect(acked.size).toBe(rounds * 20);

      await waitFor(async () => (await api.metrics()).records.anchored === acked.size, "every acknowledged record anchored", 90_000);
      const views = await Promise.all([...acked].map((id) => api.status(id)));
      expect(views.filter((v) => v?.status !== "anchored")).toEqual([]);

      const logs = await world.client.getLogs({
        address: world.relayAddress,
        event: parseAbiItem("event BatchSettlement(bytes32 indexed merkleRoot, uint256 batchSize, bytes walrusBlobId)"),
        fromBlock: 0n,
      });
      const roots = new Set(views.map((v) => v!.root));
      expect(logs).toHaveLength(roots.size);
      expect(logs.reduce((sum, l) => sum + Number(l.args.batchSize), 0)).toBe(acked.size);
    } finally {
      await outage?.catch(() => undefined);
      await worker.stop();
      await backend.close();
      await api.close();
    }
  });
});
