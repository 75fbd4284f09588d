/**
 * A worker process that kills itself (SIGKILL: no cleanup, no flush) right after a chosen step, for
 * the crash tests. Configured by the JSON in CRASH_WORKER_CONFIG (dev keys on a local chain only).
 *
 * With `withOther`, the crash waits until a second batch is in flight and held right after that step:
 * the first batch of `crashLane` to reach `crashAt` while another batch is known is the one that crashes;
 * the first other batch to reach `withOther` stops there (its step hook never returns) and the process
 * dies with both in flight. A batch that has just signed holds the relayer's turn until it sends, so to
 * crash there beside another batch, the other is held first. It prints
 * `crash <step> <batch> <tx or -> with <other batch> at <its step>`.
 */
import { writeSync } from "node:fs";
import type { Address, Hex } from "viem";
import type { Batch } from "../queue.ts";
import type { Lane } from "../records.ts";
import { RelayClient } from "../relay.ts";
import { startWorker, type WorkerStep } from "../worker.ts";
import { WalrusClient } from "../walrus.ts";

export interface CrashWorkerConfig {
  queue: { kind: "lmdb"; path: string } | { kind: "bull"; url: string; name: string; lockDurationMs: number };
  rpcUrl: string;
  chainId: number;
  network: string;
  relayAddress: Address;
  relayerKey: Hex;
  publisherUrl: string;
  aggregatorUrl: string;
  batchSize: number;
  crashAt: WorkerStep;
  crashLane: Lane;
  withOther?: WorkerStep;
  batchesInFlight?: number;
}

const config = JSON.parse(process.env.CRASH_WORKER_CONFIG ?? "") as CrashWorkerConfig;
// Loaded on demand: a child process starts faster without the other queue's dependencies.
const q = config.queue;
const queue =
  q.kind === "lmdb"
    ? new (await import("../lmdb-queue.ts")).LmdbQueue({ path: q.path })
    : new (await import("../bull-queue.ts")).BullQueue({ connection: q.url, name: q.name, lockDurationMs: q.lockDurationMs, stalledIntervalMs: 300 });

const seen = new Set<string>();
let crashing: string | undefined;
let held: { id: string; step: WorkerStep } | undefined;
let otherHeld!: () => void;
const otherArrived = new Promise<void>((resolve) => (otherHeld = resolve));

function crash(step: WorkerStep, batch: Batch): never {
  const other = held ? ` with ${held.id} at ${held.step}` : config.withOther ? " with - at -" : "";
  writeSync(1, `crash ${step} ${batch.id} ${batch.tx?.hash ?? "-"}${other}\n`);
  process.kill(process.pid, "SIGKILL");
  throw new Error("unreachable");
}

startWorker({
  queue,
  relay: new RelayClient({ rpcUrl: config.rpcUrl, chainId: config.chainId, relayAddress: config.relayAddress, relayerKey: config.relayerKey, network: config.network, pollingIntervalMs: 50 }),
  blobs: new WalrusClient({ publisherUrl: config.publisherUrl, aggregatorUrl: config.aggregatorUrl }),
  batchSize: config.batchSize,
  batchTimeoutMs: 50,
  pollIntervalMs: 20,
  batchesInFlight: config.batchesInFlight,
  async onStep(step, batch) {
    const othersKnown = [...seen].some((id) => id !== batch.id);
    seen.add(batch.id);
    const mine = step === config.crashAt && batch.lane === config.crashLane;
    if (!config.withOther) {
      if (mine) crash(step, batch);
      return;
    }
    if (mine && !crashing && othersKnown && (config.crashAt !== "signed" || held)) {
      crashing = batch.id;
      await Promise.race([otherArrived, new Promise((r) => setTimeout(r, 20_000))]);
      crash(step, batch);
    }
    if (step === config.withOther && !held && batch.id !== crashing) {
      held = { id: batch.id, step };
      otherHeld();
      await new Promise(() => undefined); // never: the process dies here
    }
  },
});
