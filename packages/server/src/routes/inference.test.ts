import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import express from "express";
import type { Hex } from "viem";
import { Reason } from "@facilitator/core";
import { LmdbQueue, InferenceService, loadBatchDump, verifyLeafProof, type WorkerHandle } from "@facilitator/inference";
import { makeRecords, startTestWorld, waitFor, type TestWorld } from "@facilitator/inference/testing";
import { listen, postJson, type Listening } from "../testing/http.ts";
import { inferenceRoutes } from "./inference.ts";

const KEY = "inference-key-0123456789";
let world: TestWorld;
let dir: string;
let service: InferenceService;
let worker: WorkerHandle;
let srv: Listening;

function app(s: InferenceService, apiKeys: string[]) {
  const a = express();
  a.use(inferenceRoutes(s, { apiKeys }));
  return a;
}

beforeAll(async () => {
  world = await startTestWorld();
  dir = mkdtempSync(join(tmpdir(), "routes-"));
  service = new InferenceService({ queue: new LmdbQueue({ path: join(dir, "q") }), validation: world.validation, maxRecordsPerSubmit: 50 });
  worker = service.startWorker({ relay: world.relay(), blobs: world.blobs(), batchSize: 4, batchTimeoutMs: 50, pollIntervalMs: 20 });
  srv = await listen(app(service, [KEY]));
});

afterAll(async () => {
  await srv?.close();
  await worker?.stop();
  await service?.close();
  await world?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const post = (body: unknown, headers: Record<string, string> = { authorization: `Bearer ${KEY}` }) => postJson(`${srv.url}/inference/settlements`, body, headers);
const get = (id: string) => fetch(`${srv.url}/inference/settlements/${id}`);

describe("POST /inference/settlements", () => {
  const [r1, r2, r3] = makeRecords(3, "http");

  it("refuses requests without a valid API key, and every request when no key is configured", async () => {
    expect((await post(r1, {})).status).toBe(401);
    const wrong = await post(r1, { "x-api-key": "not-the-key" });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ error: Reason.unauthorized });
    const closed = await listen(app(service, []));
    try {
      expect((await postJson(`${closed.url}/inference/settlements`, r1, { authorization: `Bearer ${KEY}` })).status).toBe(401);
    } finally {
      await closed.close();
    }
  });

  it("accepts one record with 202 and its id, and the same record again with the same id", async () => {
    const res = await post(r1, { "x-api-key": KEY });
    expect(res.status).toBe(202);
    const body = await res.json();
    expect(body).toMatchObject({ id: expect.stringMatching(/^0x[0-9a-f]{64}$/), status: "queued", duplicate: false });
    const again = await (await post(r1)).json();
    expect(again).toMatchObject({ id: body.id, duplicate: true });
  });

  it("answers per record for a list: good ones accepted beside bad ones, 400 when none is good", async () => {
    const mixed = await post({ records: [r2, { ...r3, outputHash: "0x12" }, { ...r3, settlementType: "later" }] });
    expect(mixed.status).toBe(202);
    const body = await mixed.json();
    expect(body).toMatchObject({ accepted: 1, rejected: 2 });
    expect(body.results[0]).toMatchObject({ id: expect.any(String) });
    expect(body.results[1]).toMatchObject({ error: { reason: Reason.invalidInferenceRecord, message: expect.stringContaining("outputHash") } });
    expect(body.results[2]).toMatchObject({ error: { reason: Reason.invalidSettlementType } });

    const none = await post({ records: [{ ...r3, inputHash: "0x" }] });
    expect(none.status).toBe(400);
    expect(await none.json()).toMatchObject({ accepted: 0, rejected: 1 });
    const single = await post({ ...r3, inputHash: "0x" });
    expect(single.status).toBe(400);
    expect(await single.json()).toMatchObject({ error: Reason.invalidInferenceRecord });
    expect((await post("just a string")).status).toBe(400);
    expect((await post({ records: makeRecords(51, "too-many") })).status).toBe(413);
  });

  it("answers 503 and stores nothing when the queue is down", async () => {
    const broken = new InferenceService({ queue: new LmdbQueue({ path: join(dir, "broken") }), validation: world.validation });
    await broken.queue.close();
    const down = await listen(app(broken, [KEY]));
    try {
      const res = await postJson(`${down.url}/inference/settlements`, r3, { authorization: `Bearer ${KEY}` });
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toBe("1");
      expect(await res.json()).toMatchObject({ error: Reason.unavailable });
    } finally {
      await down.close();
    }
  });
});

describe("GET /inference/settlements/:id", () => {
  it("shows the proof of an anchored record, which verifies against its root", async () => {
    const records = makeRecords(4, "http-proof", { tee: world.tee });
    const { results } = await (await post({ records })).json();
    const id = results[2].id as Hex;
    const view = await waitFor(async () => {
      const v = await (await get(id)).json();
      return v.status === "anchored" ? v : undefined;
    }, "record anchored");
    expect(view).toMatchObject({
      id,
      settlementType: "settle-batch",
      index: expect.any(Number),
      batchSize: expect.any(Number),
      walrusBlobId: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      transactionHash: expect.stringMatching(/^0x[0-9a-f]{64}$/),
      network: "base-sepolia",
      relayAddress: world.relayAddress,
      teeId: world.tee.id,
    });
    expect(verifyLeafProof(view.root, records[2]!, view.proof)).toBe(true);
    // Earlier records may share the batch: the stored dump names this record at the proof's index.
    const { dump, root } = loadBatchDump(await world.blobs().read(view.walrusBlobId));
    expect(root).toBe(view.root);
    expect(dump.recordIds[view.index]).toBe(id);
    expect(dump.recordIds).toHaveLength(view.batchSize);
    expect((await get(`0x${"0".repeat(64)}`)).status).toBe(404);
    expect((await get("not-an-id")).status).toBe(404);
  });
});
