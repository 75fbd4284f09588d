/**
 * Bad input, Walrus outages, a revoked relayer, individual settlements: with each queue implementation,
 * the worker taking up to three batches through their steps at once (the default), the outage and the
 * lost nonce each hitting two batches in flight.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeEventLog, parseAbiItem, type Hex } from "viem";
import { Reason } from "@facilitator/core";
import { startRedis, type RedisServer } from "@facilitator/devnet";
import { BullQueue } from "./bull-queue.ts";
import { LmdbQueue } from "./lmdb-queue.ts";
import type { InferenceQueue } from "./queue.ts";
import { SETTLEMENT_RELAY_ABI } from "./relay.ts";
import { InferenceService } from "./service.ts";
import type { WorkerEvent } from "./worker.ts";
import { makeRecords, startTestWorld, waitFor, type TestWorld } from "./testing/world.ts";

let world: TestWorld;
let redis: RedisServer;
const dirs: string[] = [];
let n = 0;

beforeAll(async () => {
  [world, redis] = await Promise.all([startTestWorld(), startRedis()]);
});

afterAll(async () => {
  await Promise.all([world?.stop(), redis?.stop()]);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const queues: [string, () => InferenceQueue][] = [
  [
    "LmdbQueue",
    () => {
      const path = mkdtempSync(join(tmpdir(), "faults-"));
      dirs.push(path);
      return new LmdbQueue({ path });
    },
  ],
  ["BullQueue", () => new BullQueue({ connection: redis.url, name: `faults-${++n}`, lockDurationMs: 2000 })],
];

const ids = (results: Awaited<ReturnType<InferenceService["submit"]>>): Hex[] =>
  results.map((r) => {
    if (!("id" in r)) throw new Error(`refused: ${JSON.stringify(r)}`);
    return r.id;
  });

async function allAnchored(service: InferenceService, recordIds: Hex[]): Promise<boolean> {
  const views = await Promise.all(recordIds.map((id) => service.status(id)));
  return views.every((v) => v?.status === "anchored");
}

describe.each(queues)("%s", (label, makeQueue) => {
  it("refuses malformed records at the door, each with its reason, and anchors the good ones beside and after them", async () => {
    const service = new InferenceService({ queue: makeQueue(), validation: world.validation });
    const [good1, good2, good3, tampered] = makeRecords(4, `door-${label}`, { tee: world.tee });
    try {
      const results = await service.submit([
        good1,
        { ...good2, inputHash: "0x1234" },
        { ...tampered, outputHash: good1!.outputHash },
        { ...good2, settlementType: "settle-soon" },
        good2,
      ]);
      expect(results.map((r) => ("error" in r ? r.error.reason : "ok"))).toEqual([
        "ok",
        Reason.invalidInferenceRecord,
        Reason.invalidTeeSignature,
        Reason.invalidSettlementType,
        "ok",
      ]);
      const worker = service.startWorker({ relay: world.relay(), blobs: world.blobs(), batchSize: 2, batchTimeoutMs: 50, pollIntervalMs: 20 });
      try {
        const later = ids(await service.submit([good3]));
        const accepted = [...ids([results[0]!, results[4]!]), ...later];
        await waitFor(() => allAnchored(service, accepted), "good records anchored");
        // Refused records stored nothing.
        expect((await service.metrics()).records).toMatchObject({ anchored: 3, queued: 0, batched: 0, failed: 0 });
      } finally {
        await worker.stop();
      }
    } finally {
      await service.close();
    }
  });

  it("anchors settle and settle-metadata records one transaction each, with their events", async () => {
    const service = new InferenceService({ queue: makeQueue(), validation: world.validation });
    const plain = makeRecords(2, `single-${label}`, { type: "settle", tee: world.tee });
    const [meta] = makeRecords(1, `meta-${label}`, { type: "settle-metadata", tee: world.tee });
    const worker = service.startWorker({ relay: world.relay(), blobs: world.blobs(), batchSize: 10, batchTimeoutMs: 50, pollIntervalMs: 20 });
    try {
      const accepted = ids(await service.submit([...plain, meta]));
      await waitFor(() => allAnchored(service, accepted), "single records anchored");
      const views = await Promise.all(accepted.map((id) => service.status(id)));
      expect(new Set(views.map((v) => v!.transactionHash)).size).toBe(3);
      expect(views[0]).not.toHaveProperty("root");
      const events = await Promise.all(
        views.map(async (v) => {
          const receipt = await world.client.getTransactionReceipt({ hash: v!.transactionHash! });
          expect(receipt.logs[0]!.address.toLowerCase()).toBe(world.relayAddress.toLowerCase());
          return decodeEventLog({ abi: SETTLEMENT_RELAY_ABI, ...receipt.logs[0]! });
        }),
      );
      expect(events[0]).toMatchObject({ eventName: "Settlement", args: { inputHash: plain[0]!.inputHash, outputHash: plain[0]!.outputHash } });
      expect(events[2]).toMatchObject({
        eventName: "SettlementWithMetadata",
        args: { inputHash: meta!.inputHash, modelInfo: "test-model", inputData: "prompt 0", outputData: "answer 0" },
      });
    } finally {
      await worker.stop();
      await service.close();
    }
  });

  it("waits out a Walrus outage answering 504 with two batches in flight, then completes both", async () => {
    const service = new InferenceService({ queue: makeQueue(), validation: world.validation });
    const events: WorkerEvent[] = [];
    world.walrus.setFault(504);
    const worker = service.startWorker({
      relay: world.relay(),
      blobs: world.blobs({ attempts: 2, backoffMs: 10 }),
      batchSize: 5,
      batchTimeoutMs: 50,
      pollIntervalMs: 20,
      maxAttempts: 2,
      backoffBaseMs: 50,
      backoffMaxMs: 150,
      onEvent: (e) => events.push(e),
    });
    try {
      const accepted = ids(await service.submit(makeRecords(10, `walrus-${label}`, { tee: world.tee })));
      const deferredBatches = () => new Set(events.filter((e) => e.type === "deferred" && e.reason === "walrus_unavailable").map((e) => e.batchId));
      await waitFor(async () => deferredBatches().size >= 2 && events.filter((e) => e.type === "deferred").length >= 4, "both batches retried during the outage");
      expect(await allAnchored(service, accepted)).toBe(false);
      world.walrus.setFault(null);
      await waitFor(() => allAnchored(service, accepted), "anchored after the outage");
      expect(events.some((e) => e.type === "parked")).toBe(false);
      expect(new Set((await Promise.all(accepted.map((id) => service.status(id)))).map((v) => v!.root)).size).toBe(2);
      expect((await service.metrics()).records.failed).toBe(0);
    } finally {
      world.walrus.setFault(null);
      await worker.stop();
      await service.close();
    }
  });

  it("signs anew only when the recorded transaction can never be mined (its nonce went elsewhere), and anchors once, beside another batch", async () => {
    const service = new InferenceService({ queue: makeQueue(), validation: world.validation });
    const events: WorkerEvent[] = [];
    let recorded: Hex | undefined;
    let recordedBatch: string | undefined;
    const worker = service.startWorker({
      relay: world.relay(),
      blobs: world.blobs(),
      batchSize: 2,
      batchTimeoutMs: 50,
      pollIntervalMs: 20,
      backoffBaseMs: 100,
      onEvent: (e) => events.push(e),
      async onStep(step, batch) {
        if (step !== "signed" || recorded) return;
        recorded = batch.tx!.hash;
        recordedBatch = batch.id;
        // Before the recorded transaction is sent, another one from the same relayer takes its nonce.
        const other = world.relay();
        const tx = await other.prepare({ functionName: "settle", args: [batch.root!, batch.root!] });
        await other.broadcast(tx);
        await other.waitSettled(tx);
        throw new Error("simulated failure between signing and sending");
      },
    });
    try {
      const accepted = ids(await service.submit(makeRecords(4, `dropped-${label}`, { tee: world.tee })));
      await waitFor(() => allAnchored(service, accepted), "anchored with a new transaction");
      const views = await Promise.all(accepted.map((id) => service.status(id)));
      expect(new Set(views.map((v) => v!.batchId)).size).toBe(2);
      expect(views.find((v) => v!.batchId === recordedBatch)!.transactionHash).not.toBe(recorded);
      expect(events).toContainEqual(expect.objectContaining({ type: "resigned", reason: "tx_dropped", batchId: recordedBatch }));
      for (const view of views) {
        const logs = await world.client.getLogs({
          address: world.relayAddress,
          event: parseAbiItem("event BatchSettlement(bytes32 indexed merkleRoot, uint256 batchSize, bytes walrusBlobId)"),
          args: { merkleRoot: view!.root! },
          fromBlock: 0n,
        });
        expect(logs.map((l) => l.transactionHash)).toEqual([view!.transactionHash]);
      }
    } finally {
      await worker.stop();
      await service.close();
    }
  });

  it("parks a batch whose tree cannot be built, with the reason, instead of retrying it for ever", async () => {
    const queue = makeQueue();
    const service = new InferenceService({ queue, validation: world.validation });
    const events: WorkerEvent[] = [];
    // A record that reached the store without the door's checks (the queue stores what it is given).
    const good = makeRecords(2, `untreeable-${label}`, { tee: world.tee });
    const broken = { ...good[0]!, inputHash: "0x1234" as Hex };
    const items = [...good, broken].map((record, i) => ({ id: `0x${String(i + 1).padStart(64, "0")}` as Hex, record }));
    await queue.enqueue(items);
    const worker = service.startWorker({ relay: world.relay(), blobs: world.blobs(), batchSize: 3, batchTimeoutMs: 50, pollIntervalMs: 20, maxAttempts: 2, backoffBaseMs: 50, onEvent: (e) => events.push(e) });
    try {
      const failed = await waitFor(async () => {
        const v = await service.status(items[0]!.id);
        return v?.status === "failed" ? v : undefined;
      }, "batch parked");
      expect(failed.error).toMatchObject({ reason: "batch_inconsistent", message: expect.stringMatching(/tree cannot be built: .*bytes32/) });
      expect(events.filter((e) => e.type === "deferred").map((e) => e.reason)).toEqual(["batch_inconsistent"]);
      expect(await service.metrics()).toMatchObject({ parkedBatches: 1, records: { failed: 3, anchored: 0 } });
    } finally {
      await worker.stop();
      await service.close();
    }
  });

  it("parks a batch whose relayer lost its role, with the reason, and completes it after the role is restored and the batch retried", async () => {
    const service = new InferenceService({ queue: makeQueue(), validation: world.validation });
    await world.setRelayer(false);
    const worker = service.startWorker({ relay: world.relay(), blobs: world.blobs(), batchSize: 3, batchTimeoutMs: 50, pollIntervalMs: 20, maxAttempts: 2, backoffBaseMs: 50 });
    try {
      const accepted = ids(await service.submit(makeRecords(3, `revoked-${label}`, { tee: world.tee })));
      const failed = await waitFor(async () => {
        const v = await service.status(accepted[0]!);
        return v?.status === "failed" ? v : undefined;
      }, "batch parked");
      expect(failed.error).toMatchObject({ reason: "relayer_not_authorized" });
      // The worker counts the park after the queue has stored it; readers can see the status first.
      const m = await waitFor(async () => {
        const now = await service.metrics();
        return now.workers.batchesParked === 1 ? now : undefined;
      }, "park counted");
      expect(m).toMatchObject({ parkedBatches: 1, records: { failed: 3 }, workers: { batchesParked: 1 } });

      await world.setRelayer(true);
      expect(await service.retryParked()).toBe(1);
      await waitFor(() => allAnchored(service, accepted), "anchored after retry");
      expect(await service.metrics()).toMatchObject({ parkedBatches: 0, records: { failed: 0, anchored: 3 } });
    } finally {
      await world.setRelayer(true);
      await worker.stop();
      await service.close();
    }
  });
});
