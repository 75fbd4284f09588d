/**
 * The Walrus publisher failing (504 on every request) for a while, under an API process and two
 * worker processes: batches must wait (nothing anchored without its dump stored) and then complete,
 * each exactly once, with their dumps retrievable under the blob id recorded on chain.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Hex } from "viem";
import { devKey, DevRole, waitFor } from "@facilitator/devnet";
import { loadBatchDump } from "@facilitator/inference";
import { spawnFacilitator, startProcessWorld, stopAll, type FacilitatorProcess, type ProcessWorld } from "./helpers/processes.ts";
import { postForAnswer } from "./helpers/http.ts";
import { chainView } from "./helpers/chain.ts";
import { relayBatches } from "./helpers/relay.ts";

const KEY = devKey(DevRole.facilitator);
/** How long the publisher fails: longer than the Walrus client's own retries (about 4 s) and the first worker backoff. */
const OUTAGE_MS = 6_000;

let pw: ProcessWorld;
let processes: FacilitatorProcess[] = [];
let api: FacilitatorProcess;

beforeAll(async () => {
  pw = await startProcessWorld();
  const worker = (name: string) => spawnFacilitator({ name, role: "worker", env: pw.env({ evmKeys: [KEY], batchSize: 100, batchTimeoutMs: 300 }) });
  processes = await Promise.all([
    spawnFacilitator({ name: "api", role: "api", env: pw.env({ evmKeys: [KEY], runWorker: false }) }),
    worker("worker-1"),
    worker("worker-2"),
  ]);
  api = processes[0]!;
});

afterAll(async () => {
  pw?.walrus.setFault(null);
  await stopAll(processes);
  await pw?.stop();
});

const hex32 = (): Hex => `0x${randomBytes(32).toString("hex")}`;

describe("Walrus failing with 504 for a while", () => {
  it("batches wait while it fails (no anchor without a stored dump), then complete exactly once each, dumps retrievable by their on-chain blob ids", async () => {
    const fromBlock = pw.relay.fromBlock;
    pw.walrus.setFault(504);
    const ids: Hex[] = [];
    try {
      // Intake does not depend on Walrus: records are accepted durably.
      for (let i = 0; i < 3; i++) {
        const a = await postForAnswer(
          `${api.url}/inference/settlements`,
          { records: Array.from({ length: 90 }, () => ({ inputHash: hex32(), outputHash: hex32() })) },
          { headers: { authorization: `Bearer ${pw.inferenceApiKey}` } },
        );
        expect(a.status).toBe(202);
        ids.push(...a.body.results.map((r: { id: Hex }) => r.id));
      }
      await new Promise((r) => setTimeout(r, OUTAGE_MS));
      expect(await relayBatches(pw.chain.rpcUrl, pw.relay.address, fromBlock)).toEqual([]);
      const waiting = await Promise.all(ids.map(async (id) => (await (await fetch(`${api.url}/inference/settlements/${id}`)).json()).status));
      expect(waiting.every((s) => s === "queued" || s === "batched")).toBe(true);
      expect(waiting).toContain("batched"); // the workers formed batches and hold them
      const ready = await fetch(`${api.url}/ready`);
      expect(ready.status).toBe(503);
      expect((await ready.json()).failing).toEqual(["walrus"]);
    } finally {
      pw.walrus.setFault(null);
    }

    const batches = await waitFor(async () => {
      const found = await relayBatches(pw.chain.rpcUrl, pw.relay.address, fromBlock);
      return found.reduce((s, b) => s + b.batchSize, 0) >= ids.length ? found : undefined;
    }, "every record on chain after Walrus recovered", 90_000);
    expect(batches.reduce((s, b) => s + b.batchSize, 0)).toBe(ids.length);
    expect(new Set(batches.map((b) => b.root)).size).toBe(batches.length);

    const views = await waitFor(async () => {
      const v = await Promise.all(ids.map(async (id) => (await fetch(`${api.url}/inference/settlements/${id}`)).json()));
      return v.every((x) => x.status === "anchored") ? v : undefined;
    }, "every record marked anchored", 30_000);
    const perRoot = new Map<string, number>();
    for (const v of views) perRoot.set(v.root, (perRoot.get(v.root) ?? 0) + 1);
    for (const b of batches) expect(perRoot.get(b.root)).toBe(b.batchSize);

    // The blob id in each event names a stored dump whose tree has that root and lists those records.
    const client = chainView(pw.chain).client;
    for (const b of batches) {
      const tx = await client.getTransactionReceipt({ hash: b.transactionHash });
      const view = views.find((v) => v.root === b.root)!;
      expect(tx.status).toBe("success");
      const blob = await fetch(`${pw.walrus.aggregatorUrl}/v1/blobs/${view.walrusBlobId}`);
      expect(blob.status).toBe(200);
      const { root, dump } = loadBatchDump(new Uint8Array(await blob.arrayBuffer()));
      expect(root).toBe(b.root);
      expect(dump.recordIds.length).toBe(b.batchSize);
    }
  });
});
