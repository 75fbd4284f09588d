/**
 * Crash at each worker step, then resume: a child worker process SIGKILLs itself right after the
 * step; a fresh worker on the same store finishes the work. Exactly once on chain: one event per
 * root or record, and once a transaction was signed, the resumed worker anchors with that very one.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAbiItem, type Hex } from "viem";
import { repoRoot, startRedis, type RedisServer } from "@facilitator/devnet";
import { BullQueue } from "../bull-queue.ts";
import { LmdbQueue } from "../lmdb-queue.ts";
import type { InferenceQueue } from "../queue.ts";
import type { Lane } from "../records.ts";
import { InferenceService } from "../service.ts";
import type { WorkerStep } from "../worker.ts";
import type { CrashWorkerConfig } from "./crash-worker.ts";
import { CHAIN_ID, makeRecords, NETWORK, startTestWorld, waitFor, type TestWorld } from "./world.ts";

const CHILD = fileURLToPath(new URL("./crash-worker.ts", import.meta.url));
const LOCK_MS = 1000;

const CASES: [WorkerStep, Lane][] = [
  ["formed", "batch"],
  ["uploaded", "batch"],
  ["signed", "batch"],
  ["sent", "batch"],
  ["signed", "single"],
  ["sent", "single"],
];

function runChild(config: CrashWorkerConfig): Promise<{ signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", CHILD], {
      cwd: repoRoot,
      env: { ...process.env, CRASH_WORKER_CONFIG: JSON.stringify(config) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("error", reject);
    child.on("exit", (_code, signal) => {
      clearTimeout(timer);
      resolve({ signal, stdout, stderr });
    });
  });
}

export function crashSuite(kind: "lmdb" | "bull"): void {
  let world: TestWorld;
  let redis: RedisServer | undefined;
  const dirs: string[] = [];
  let n = 0;

  beforeAll(async () => {
    world = await startTestWorld();
    if (kind === "bull") redis = await startRedis();
  });

  afterAll(async () => {
    await Promise.all([world?.stop(), redis?.stop()]);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  function store(): { queue: () => InferenceQueue; config: CrashWorkerConfig["queue"] } {
    if (kind === "lmdb") {
      const path = mkdtempSync(join(tmpdir(), "crash-"));
      dirs.push(path);
      return { queue: () => new LmdbQueue({ path }), config: { kind, path } };
    }
    const name = `crash-${++n}`;
    return {
      queue: () => new BullQueue({ connection: redis!.url, name, lockDurationMs: LOCK_MS, stalledIntervalMs: 300 }),
      config: { kind, url: redis!.url, name, lockDurationMs: LOCK_MS },
    };
  }

  describe(`crash and resume (${kind} queue)`, () => {
    it.each(CASES)("after the %s step of a %s batch: resumed, anchored exactly once", async (step, lane) => {
      const s = store();
      const service = new InferenceService({ queue: s.queue(), validation: world.validation });
      try {
        const label = `${kind}-${step}-${lane}`;
        const records = lane === "batch" ? makeRecords(4, label, { tee: world.tee }) : makeRecords(1, label, { type: "settle", tee: world.tee });
        const accepted = (await service.submit(records)).map((r) => ("id" in r ? r.id : undefined)) as Hex[];
        expect(accepted.every(Boolean)).toBe(true);

        const child = await runChild({
          queue: s.config,
          rpcUrl: world.anvil.rpcUrl,
          chainId: CHAIN_ID,
          network: NETWORK,
          relayAddress: world.relayAddress,
          relayerKey: world.relayerKey,
          publisherUrl: world.walrus.publisherUrl,
          aggregatorUrl: world.walrus.aggregatorUrl,
          batchSize: 4,
          crashAt: step,
          crashLane: lane,
        });
        expect(child.signal, child.stderr).toBe("SIGKILL");
        const [, , batchId, signedHash] = child.stdout.trim().split(" ");
        expect(child.stdout).toMatch(new RegExp(`^crash ${step} `));
        expect((await service.status(accepted[0]!))?.status).toBe("batched");

        const worker = service.startWorker({ relay: world.relay(), blobs: world.blobs(), batchSize: 4, batchTimeoutMs: 50, pollIntervalMs: 20 });
        try {
          await waitFor(async () => (await Promise.all(accepted.map((id) => service.status(id)))).every((v) => v?.status === "anchored"), "resumed anchoring");
        } finally {
          await worker.stop();
        }

        const views = await Promise.all(accepted.map((id) => service.status(id)));
        expect(views.every((v) => v!.batchId === batchId)).toBe(true);
        const txHash = views[0]!.transactionHash!;
        if (step === "signed" || step === "sent") expect(txHash).toBe(signedHash); // the recorded transaction, not a new one

        if (lane === "batch") {
          const logs = await world.client.getLogs({
            address: world.relayAddress,
            event: parseAbiItem("event BatchSettlement(bytes32 indexed merkleRoot, uint256 batchSize, bytes walrusBlobId)"),
            args: { merkleRoot: views[0]!.root! },
            fromBlock: 0n,
          });
          expect(logs.map((l) => l.transactionHash)).toEqual([txHash]);
        } else {
          const logs = await world.client.getLogs({
            address: world.relayAddress,
            event: parseAbiItem("event Settlement(bytes32 indexed inputHash, bytes32 indexed outputHash)"),
            args: { inputHash: records[0]!.inputHash },
            fromBlock: 0n,
          });
          expect(logs.map((l) => l.transactionHash)).toEqual([txHash]);
        }
      } finally {
        await service.close();
      }
    });
  });
}
