/**
 * A worker process that kills itself (SIGKILL: no cleanup, no flush) right after a chosen step, for
 * the crash tests. Configured by the JSON in CRASH_WORKER_CONFIG (dev keys on a local chain only).
 */
import { writeSync } from "node:fs";
import type { Address, Hex } from "viem";
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
}

const config = JSON.parse(process.env.CRASH_WORKER_CONFIG ?? "") as CrashWorkerConfig;
// Loaded on demand: a child process starts faster without the other queue's dependencies.
const q = config.queue;
const queue =
  q.kind === "lmdb"
    ? new (await import("../lmdb-queue.ts")).LmdbQueue({ path: q.path })
    : new (await import("../bull-queue.ts")).BullQueue({ connection: q.url, name: q.name, lockDurationMs: q.lockDurationMs, stalledIntervalMs: 300 });

startWorker({
  queue,
  relay: new RelayClient({ rpcUrl: config.rpcUrl, chainId: config.chainId, relayAddress: config.relayAddress, relayerKey: config.relayerKey, network: config.network, pollingIntervalMs: 50 }),
  blobs: new WalrusClient({ publisherUrl: config.publisherUrl, aggregatorUrl: config.aggregatorUrl }),
  batchSize: config.batchSize,
  batchTimeoutMs: 50,
  pollIntervalMs: 20,
  onStep(step, batch) {
    if (step !== config.crashAt || batch.lane !== config.crashLane) return;
    writeSync(1, `crash ${step} ${batch.id} ${batch.tx?.hash ?? "-"}\n`);
    process.kill(process.pid, "SIGKILL");
  },
});
