/**
 * The connection to Redis fails in the middle of an intake call: a proxy (testing/redis-cut.ts, a
 * stand-in for the network only) cuts it before the request reaches the real redis-server, or after
 * Redis ran it but before the reply came back, and keeps the network down for a while. Whatever Redis
 * did, a record is either absent or stored with its place in line (so anchored even if nobody ever
 * asks again), a retry of the same records completes the intake, and each is anchored exactly once.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAbiItem } from "viem";
import { startRedis, type RedisServer } from "@facilitator/devnet";
import { BullQueue } from "./bull-queue.ts";
import { recordId, type InferenceRecord } from "./records.ts";
import { InferenceService, type SubmitResult } from "./service.ts";
import { startRedisCut, type RedisCut } from "./testing/redis-cut.ts";
import { makeRecords, startTestWorld, waitFor, type TestWorld } from "./testing/world.ts";

let world: TestWorld;
let redis: RedisServer;
let proxy: RedisCut;
let n = 0;

beforeAll(async () => {
  [world, redis] = await Promise.all([startTestWorld(), startRedis({ appendOnly: true })]);
  proxy = await startRedisCut(redis.port);
});

afterAll(async () => {
  await proxy?.close();
  await Promise.all([world?.stop(), redis?.stop()]);
});

/** An API process's service, connected through the proxy with the production client settings. */
function apiThroughProxy(name: string): InferenceService {
  const queue = new BullQueue({ connection: `redis://127.0.0.1:${proxy.port}`, name });
  return new InferenceService({ queue, validation: world.validation });
}

/** A worker process's service on a direct connection (it also takes retries, as another API process would). */
function directService(name: string): InferenceService {
  return new InferenceService({ queue: new BullQueue({ connection: redis.url, name, lockDurationMs: 1000, stalledIntervalMs: 300 }), validation: world.validation });
}

const answers = (results: SubmitResult[]) => results.map((r) => ("id" in r ? { status: r.status, duplicate: r.duplicate } : r.error));
const idOf = (r: InferenceRecord) => recordId(r);
const anchored = async (service: InferenceService, records: InferenceRecord[]) =>
  (await Promise.all(records.map((r) => service.status(idOf(r))))).every((v) => v?.status === "anchored");

/** Checks each of `records` is on chain exactly once since `fromBlock`, and nothing else is. */
async function expectOnChainOnce(service: InferenceService, records: InferenceRecord[], fromBlock: bigint): Promise<void> {
  expect((await service.metrics()).records).toEqual({ queued: 0, batched: 0, anchored: records.length, failed: 0 });
  const views = await Promise.all(records.map((r) => service.status(idOf(r))));
  const batchLane = views.filter((v) => v!.settlementType === "settle-batch");
  const batches = await world.client.getLogs({
    address: world.relayAddress,
    event: parseAbiItem("event BatchSettlement(bytes32 indexed merkleRoot, uint256 batchSize, bytes walrusBlobId)"),
    fromBlock,
  });
  // Every batch anchored since the start is one of these records' batches, and they add up to them: no record twice.
  expect(new Set(batches.map((l) => l.args.merkleRoot))).toEqual(new Set(batchLane.map((v) => v!.root)));
  expect(batches.reduce((sum, l) => sum + Number(l.args.batchSize), 0)).toBe(batchLane.length);
  const singles = await world.client.getLogs({
    address: world.relayAddress,
    events: [
      parseAbiItem("event Settlement(bytes32 indexed inputHash, bytes32 indexed outputHash)"),
      parseAbiItem("event SettlementWithMetadata(bytes32 indexed inputHash, bytes32 indexed outputHash, string modelInfo, string inputData, string outputData)"),
    ],
    fromBlock,
  });
  const singleLane = records.filter((r) => r.settlementType !== "settle-batch");
  expect(singles.map((l) => l.args.inputHash).sort()).toEqual(singleLane.map((r) => r.inputHash).sort());
}

const startWorker = (service: InferenceService) =>
  service.startWorker({ relay: world.relay(), blobs: world.blobs(), batchSize: 4, batchTimeoutMs: 50, pollIntervalMs: 20 });

describe("BullQueue intake when the connection to Redis fails mid-call", () => {
  it(
    "reply lost after Redis ran the intake: the records are complete at once (anchored while the call still waits; a retry elsewhere answers them as known), and the call, once the connection is back, answers as the first run did",
    { timeout: 60_000 },
    async () => {
      const name = `cut-reply-${++n}`;
      const fromBlock = (await world.client.getBlockNumber()) + 1n;
      const api = apiThroughProxy(name);
      const backend = directService(name);
      let worker: ReturnType<typeof startWorker> | undefined;
      try {
        const records = [...makeRecords(6, name, { tee: world.tee }), ...makeRecords(1, `${name}-single`, { type: "settle", tee: world.tee })];
        await api.status(idOf(records[0]!)); // connected

        const cut = proxy.cutReplyToRequestWith(idOf(records[0]!).slice(2));
        const call = api.submit(records);
        call.catch(() => undefined); // awaited below; a failure before then must not go unhandled
        await cut;
        // The caller gives up on this API process and sends some of the records to another.
        const retried = records.filter((_, i) => i % 2 === 0);
        expect(answers(await backend.submit(retried))).toEqual(retried.map(() => ({ status: "queued", duplicate: true })));
        // Those never retried are anchored as well, while their call is still waiting for its reply.
        worker = startWorker(backend);
        await waitFor(() => anchored(backend, records), "every record anchored");
        await expectOnChainOnce(backend, records, fromBlock);

        proxy.restore();
        // ioredis sends the call again on the new connection; it gets the first run's answer.
        expect(answers(await call)).toEqual(records.map(() => ({ status: "queued", duplicate: false })));
        expect(await backend.queue.stats()).toMatchObject({ records: { queued: 0, anchored: records.length } });
        await expectOnChainOnce(backend, records, fromBlock);
      } finally {
        proxy.restore();
        await worker?.stop();
        await Promise.all([api.close(), backend.close()]);
      }
    },
  );

  it("request lost before Redis saw it: nothing is stored while the call waits; once the connection is back the call stores every record as new, and each is anchored once", { timeout: 60_000 }, async () => {
    const name = `cut-request-${++n}`;
    const fromBlock = (await world.client.getBlockNumber()) + 1n;
    const api = apiThroughProxy(name);
    const backend = directService(name);
    try {
      const records = [...makeRecords(5, name, { tee: world.tee }), ...makeRecords(1, `${name}-single`, { type: "settle-metadata", tee: world.tee })];
      await api.status(idOf(records[0]!));

      const cut = proxy.cutRequestWith(idOf(records[0]!).slice(2));
      const call = api.submit(records);
      call.catch(() => undefined);
      await cut;
      expect(await backend.queue.getMany(records.map(idOf))).toEqual(records.map(() => undefined));
      expect((await backend.queue.stats()).records.queued).toBe(0);

      proxy.restore();
      expect(answers(await call)).toEqual(records.map(() => ({ status: "queued", duplicate: false })));
      const worker = startWorker(backend);
      try {
        await waitFor(() => anchored(backend, records), "every record anchored");
      } finally {
        await worker.stop();
      }
      await expectOnChainOnce(backend, records, fromBlock);
    } finally {
      proxy.restore();
      await Promise.all([api.close(), backend.close()]);
    }
  });
});
