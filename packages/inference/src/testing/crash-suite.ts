/**
 * Crash at each worker step, then resume: a child worker process SIGKILLs itself right after the
 * step; a fresh worker on the same store finishes the work. Exactly once on chain: one event per
 * root or record, and once a transaction was signed, the resumed worker anchors with that very one.
 * First with one batch in flight, then with three batches' worth of records and the crash timed while
 * a second batch is held right after a chosen step of its own (see crash-worker.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAbiItem, type Hex } from "viem";
import { repoRoot, startRedis, startRedisCluster } from "@facilitator/devnet";
import { BullQueue } from "../bull-queue.ts";
import { LmdbQueue } from "../lmdb-queue.ts";
import type { InferenceQueue } from "../queue.ts";
import type { InferenceRecord, Lane } from "../records.ts";
import { InferenceService, type RecordView } from "../service.ts";
import type { WorkerEvent, WorkerStep } from "../worker.ts";
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

/**
 * [step of the batch that crashes, its lane, step the other batch is held at]. Each step on each side.
 * A batch holds the relayer's turn to sign from signing until it has sent (worker.ts), so a batch
 * held right after signing keeps others from signing: those pairs are left out (they cannot happen).
 */
const PAIRED: [WorkerStep, Lane, WorkerStep][] = [
  ["formed", "batch", "uploaded"],
  ["uploaded", "batch", "sent"],
  ["signed", "batch", "uploaded"],
  ["signed", "batch", "sent"],
  ["sent", "batch", "uploaded"],
  ["sent", "batch", "sent"],
  ["formed", "single", "signed"],
  ["signed", "single", "sent"],
  ["sent", "single", "sent"],
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

/** lmdb: LmdbQueue; bull: BullQueue on one redis-server; bull-cluster: BullQueue on a Redis Cluster (3 primaries, a replica each). */
export function crashSuite(kind: "lmdb" | "bull" | "bull-cluster"): void {
  let world: TestWorld;
  let redis: { url: string; stop(): Promise<void> } | undefined;
  const dirs: string[] = [];
  let n = 0;

  beforeAll(async () => {
    world = await startTestWorld();
    if (kind === "bull") redis = await startRedis();
    if (kind === "bull-cluster") redis = await startRedisCluster();
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
      config: { kind: "bull", url: redis!.url, name, lockDurationMs: LOCK_MS },
    };
  }

  /** Records of `batches` batches of `lane` (4 records to a Merkle batch), accepted before the crash. */
  async function submit(service: InferenceService, label: string, lane: Lane, batches: number): Promise<{ records: InferenceRecord[]; ids: Hex[] }> {
    const records = lane === "batch" ? makeRecords(4 * batches, label, { tee: world.tee }) : makeRecords(batches, label, { type: "settle", tee: world.tee });
    const ids = (await service.submit(records)).map((r) => ("id" in r ? r.id : undefined)) as Hex[];
    expect(ids.every(Boolean)).toBe(true);
    return { records, ids };
  }

  function crashChild(s: ReturnType<typeof store>, crashAt: WorkerStep, crashLane: Lane, withOther?: WorkerStep) {
    return runChild({
      queue: s.config,
      rpcUrl: world.anvil.rpcUrl,
      chainId: CHAIN_ID,
      network: NETWORK,
      relayAddress: world.relayAddress,
      relayerKey: world.relayerKey,
      publisherUrl: world.walrus.publisherUrl,
      aggregatorUrl: world.walrus.aggregatorUrl,
      batchSize: 4,
      crashAt,
      crashLane,
      ...(withOther ? { withOther, batchesInFlight: 3 } : {}),
    });
  }

  /** A fresh worker finishes every record; resolves with the records' views once all are anchored. */
  async function resume(service: InferenceService, ids: Hex[], events: WorkerEvent[] = []): Promise<RecordView[]> {
    const worker = service.startWorker({ relay: world.relay(), blobs: world.blobs(), batchSize: 4, batchTimeoutMs: 50, pollIntervalMs: 20, onEvent: (e) => events.push(e) });
    try {
      await waitFor(async () => (await Promise.all(ids.map((id) => service.status(id)))).every((v) => v?.status === "anchored"), "resumed anchoring");
    } finally {
      await worker.stop();
    }
    return (await Promise.all(ids.map((id) => service.status(id)))) as RecordView[];
  }

  /** Exactly one event on chain per root (batch lane) or per record (single lane), from the transaction each record names. */
  async function expectAnchoredOnce(records: InferenceRecord[], views: RecordView[], lane: Lane): Promise<void> {
    if (lane === "batch") {
      const logs = await world.client.getLogs({ address: world.relayAddress, event: BATCH_EVENT, fromBlock: 0n });
      for (const root of new Set(views.map((v) => v.root!))) {
        const txs = new Set(views.filter((v) => v.root === root).map((v) => v.transactionHash));
        expect(logs.filter((l) => l.args.merkleRoot === root).map((l) => l.transactionHash)).toEqual([...txs]);
      }
    } else {
      for (const [i, r] of records.entries()) {
        const logs = await world.client.getLogs({ address: world.relayAddress, event: SINGLE_EVENT, args: { inputHash: r.inputHash }, fromBlock: 0n });
        expect(logs.map((l) => l.transactionHash)).toEqual([views[i]!.transactionHash]);
      }
    }
  }

  describe(`crash and resume (${kind} queue)`, () => {
    it.each(CASES)("after the %s step of a %s batch: resumed, anchored exactly once", async (step, lane) => {
      const s = store();
      const service = new InferenceService({ queue: s.queue(), validation: world.validation });
      try {
        const { records, ids } = await submit(service, `${kind}-${step}-${lane}`, lane, 1);
        const child = await crashChild(s, step, lane);
        expect(child.signal, child.stderr).toBe("SIGKILL");
        const [, , batchId, signedHash] = child.stdout.trim().split(" ");
        expect(child.stdout).toMatch(new RegExp(`^crash ${step} `));
        expect((await service.status(ids[0]!))?.status).toBe("batched");

        const views = await resume(service, ids);
        expect(views.every((v) => v.batchId === batchId)).toBe(true);
        if (step === "signed" || step === "sent") expect(views[0]!.transactionHash).toBe(signedHash); // the recorded transaction, not a new one
        await expectAnchoredOnce(records, views, lane);
      } finally {
        await service.close();
      }
    });

    it.each(PAIRED)("after the %s step of a %s batch while another is held after its %s step: every batch resumed, each anchored once", async (step, lane, other) => {
      const s = store();
      const service = new InferenceService({ queue: s.queue(), validation: world.validation });
      try {
        const { records, ids } = await submit(service, `${kind}-${step}-${lane}-${other}`, lane, 3);
        const child = await crashChild(s, step, lane, other);
        expect(child.signal, child.stderr).toBe("SIGKILL");
        const [, , crashed, , , heldId, , heldStep] = child.stdout.trim().split(" ");
        expect(child.stdout.trim()).toMatch(new RegExp(`^crash ${step} \\S+ \\S+ with \\S+ at ${other}$`));
        expect(heldId).not.toBe(crashed);

        // What the store says each batch had reached when the process died.
        const before = await Promise.all(ids.map((id) => service.status(id)));
        const batchIds = new Set(before.flatMap((v) => (v?.status === "batched" ? [v.batchId!] : [])));
        expect(batchIds).toContain(crashed);
        if (heldStep !== "formed") expect(batchIds).toContain(heldId);
        const recorded = new Map<string, Hex>();
        for (const id of batchIds) {
          const b = await service.queue.getBatch(id);
          if (b?.progress === "signed") recorded.set(id, b.tx!.hash);
        }
        if (step === "signed" || step === "sent") expect(recorded.has(crashed!)).toBe(true);
        if (other === "sent") expect(recorded.has(heldId!)).toBe(true);

        const events: WorkerEvent[] = [];
        const views = await resume(service, ids, events);
        // Records stay in the batch they were formed in. A batch that had signed anchors with that
        // transaction, unless it never reached the node and another batch's transaction took its nonce
        // first: then, and only then, it was signed anew (batches resumed side by side race for the
        // relayer's nonces, a recorded transaction against a new one, and either may lose).
        before.forEach((v, i) => v?.batchId && expect(views[i]!.batchId).toBe(v.batchId));
        const dropped = new Set(events.filter((e) => e.type === "resigned" && e.reason === "tx_dropped").map((e) => e.batchId));
        for (const v of views) if (recorded.has(v.batchId!) && !dropped.has(v.batchId)) expect(v.transactionHash).toBe(recorded.get(v.batchId!));
        // A transaction that had been sent is never the one dropped.
        if (other === "sent") expect(dropped.has(heldId)).toBe(false);
        if (step === "sent") expect(dropped.has(crashed)).toBe(false);
        await expectAnchoredOnce(records, views, lane);
      } finally {
        await service.close();
      }
    });
  });
}

const BATCH_EVENT = parseAbiItem("event BatchSettlement(bytes32 indexed merkleRoot, uint256 batchSize, bytes walrusBlobId)");
const SINGLE_EVENT = parseAbiItem("event Settlement(bytes32 indexed inputHash, bytes32 indexed outputHash)");
