/**
 * The anchoring worker. One loop per worker: resume any open batch that is due, otherwise form a new
 * one (by size, or by the age of its oldest record), and take it through its steps, persisting each,
 * with up to `batchesInFlight` batches at once (each leased on its own, each through its own steps):
 *
 *   formed    records assigned; the tree is fixed by them and `createdAt`
 *   uploaded  dump stored on Walrus; root and blob id recorded          (Merkle batches only)
 *   signed    relay transaction simulated, signed and recorded before it is sent
 *   anchored  receipt seen; every record marked anchored with its proof
 *
 * A worker that dies at any point is replaced by one that resumes from the recorded step: the same
 * dump (same blob id), the same root, the same signed bytes. A new transaction is signed only when the
 * recorded one provably can never be mined (its nonce went to another transaction) or was mined and
 * reverted, or to replace one that fees have left behind (same nonce, so only one of them can be
 * mined). Failures are retried with exponential backoff; transport trouble (Walrus 5xx, RPC down)
 * forever, chain refusals (role revoked, no gas money, revert) `maxAttempts` times, then the batch is
 * parked and its records marked failed with the reason, until `retryParked`.
 *
 * Batches in flight share the relayer's key, so their transactions share its nonces. A transaction is
 * signed at the node's pending nonce; this worker signs, records and sends one transaction at a time
 * (`sendTurn`), so the next batch signs only once the one before is in the node's pool, at the nonce
 * after it. Everything slow (the tree, the upload, waiting for the receipt) runs side by side.
 */
import { toHex, type Hex } from "viem";
import { buildGatewayBatchTree } from "./gateway-merkle.ts";
import { buildBatchTree, buildBatchTreeOffThread, type BatchTree } from "./merkle.ts";
import { LeaseLostError, type Batch, type BatchAnchoring, type InferenceQueue } from "./queue.ts";
import { isMerkleLane, type InferenceRecord } from "./records.ts";
import { AnchorError, classify, type RelayCall, type RelayClient } from "./relay.ts";
import { WalrusError, type BlobStore } from "./walrus.ts";

export type WorkerStep = "formed" | "uploaded" | "signed" | "sent" | "anchored";

export interface WorkerEvent {
  type: "anchored" | "deferred" | "parked" | "lease_lost" | "loop_error" | "root_already_anchored" | "resigned" | "replaced";
  batchId?: string;
  size?: number;
  reason?: string;
  message?: string;
  /** On `anchored`: what the anchoring transaction cost in wei (gas used x effective gas price), when this worker saw its receipt. */
  feeWei?: bigint;
}

export interface AnchorWorkerOptions {
  queue: InferenceQueue;
  relay: RelayClient;
  blobs: BlobStore;
  /** SETTLEMENT_BATCH_SIZE: records per Merkle batch. */
  batchSize: number;
  /** SETTLEMENT_BATCH_TIMEOUT: a smaller batch forms once its oldest record waited this long (ms). */
  batchTimeoutMs: number;
  /** SETTLEMENT_BATCHES_IN_FLIGHT: batches taken through their steps at the same time (default DEFAULT_BATCHES_IN_FLIGHT). */
  batchesInFlight?: number;
  /** Idle wait between looks at the queue (ms). */
  pollIntervalMs?: number;
  /** SETTLEMENT_COMPACT_DUMP_ABOVE: batches of more records are stored as compact dumps (default COMPACT_DUMP_ABOVE). */
  compactDumpAbove?: number;
  /** Batches of at least this many records have their tree built in a worker thread (default TREE_THREAD_FROM); smaller ones inline. */
  treeThreadFrom?: number;
  /** Chain refusals tolerated before a batch is parked. */
  maxAttempts?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Called after each persisted step; for observation and for crash tests' stop-points. */
  onStep?: (step: WorkerStep, batch: Batch) => void | Promise<void>;
  onEvent?: (event: WorkerEvent) => void;
}

/** Enough to keep the chain busy while the next batches are built and uploaded; few enough to bound the trees held in memory. */
export const DEFAULT_BATCHES_IN_FLIGHT = 3;

/** From this many records a tree (about 5 µs a leaf) is built off the event loop, so intake and lease renewals keep running. */
export const TREE_THREAD_FROM = 1_024;

export interface WorkerStats {
  batchesAnchored: number;
  recordsAnchored: number;
  /** Batches this worker parked: a counter to expose as a metric. */
  batchesParked: number;
  failures: number;
}

export interface WorkerHandle {
  /** Finishes the current step of each batch in flight, gives them back, and resolves when the loop has ended. */
  stop(): Promise<void>;
  /** Looks at the queue now instead of after the idle wait (e.g. right after an enqueue). */
  wake(): void;
  stats(): WorkerStats;
}

export function startWorker(opts: AnchorWorkerOptions): WorkerHandle {
  const worker = new AnchorWorker(opts);
  const loop = worker.run();
  return {
    async stop() {
      worker.stopping = true;
      worker.wake();
      await loop;
    },
    wake: () => worker.wake(),
    stats: () => ({ ...worker.stats }),
  };
}

class AnchorWorker {
  stopping = false;
  readonly stats: WorkerStats = { batchesAnchored: 0, recordsAnchored: 0, batchesParked: 0, failures: 0 };
  private wakeUp: (() => void) | undefined;
  private readonly poll: number;
  private readonly maxAttempts: number;
  private readonly backoffBase: number;
  private readonly backoffMax: number;
  private readonly inFlightMax: number;
  /** Until the next look: the poll interval, or sooner when waiting records come of age. */
  private idle = 0;
  /** The end of the last batch's turn to sign and send (see `sendTurn`). */
  private sending: Promise<void> = Promise.resolve();

  constructor(private readonly o: AnchorWorkerOptions) {
    this.poll = o.pollIntervalMs ?? 250;
    this.inFlightMax = o.batchesInFlight ?? DEFAULT_BATCHES_IN_FLIGHT;
    if (!(Number.isInteger(this.inFlightMax) && this.inFlightMax >= 1)) throw new Error("batchesInFlight must be a whole number >= 1");
    this.maxAttempts = o.maxAttempts ?? 5;
    this.backoffBase = o.backoffBaseMs ?? 1000;
    this.backoffMax = o.backoffMaxMs ?? 60_000;
    if (!(o.batchSize >= 1)) throw new Error("batchSize must be at least 1");
  }

  wake(): void {
    this.wakeUp?.();
  }

  async run(): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    while (!this.stopping) {
      // Full: wait for a batch to finish (it wakes the loop) or for the next look.
      if (inFlight.size >= this.inFlightMax || !(await this.startNext(inFlight))) await this.sleep(this.idle);
    }
    await Promise.all(inFlight);
  }

  /** Leases or forms one batch; true when there was something to do (look again at once). */
  private async startNext(inFlight: Set<Promise<void>>): Promise<boolean> {
    this.idle = this.poll;
    try {
      const leased = await this.o.queue.leaseBatch();
      if (leased) {
        const working = this.work(leased).finally(() => {
          inFlight.delete(working);
          this.wake(); // a place is free
        });
        inFlight.add(working);
        return true;
      }
      const formed = await this.o.queue.formBatch("batch", { maxSize: this.o.batchSize, maxWaitMs: this.o.batchTimeoutMs });
      if (formed.batch) {
        await this.o.onStep?.("formed", formed.batch);
        return true;
      }
      // Gateway records (RSA-PSS) get Merkle batches of their own, in the gateway's leaf layout.
      const gateway = await this.o.queue.formBatch("gateway", { maxSize: this.o.batchSize, maxWaitMs: this.o.batchTimeoutMs });
      if (gateway.batch) {
        await this.o.onStep?.("formed", gateway.batch);
        return true;
      }
      const single = await this.o.queue.formBatch("single", { maxSize: 1, maxWaitMs: 0 });
      if (single.batch) {
        await this.o.onStep?.("formed", single.batch);
        return true;
      }
      for (const wait of [formed.retryInMs, gateway.retryInMs]) if (wait !== undefined) this.idle = Math.max(1, Math.min(this.idle, wait));
    } catch (e) {
      this.o.onEvent?.({ type: "loop_error", message: (e as Error).message });
    }
    return false;
  }

  /**
   * Waits for this worker's turn to sign and send; call the function it resolves with once the signed
   * transaction is sent (or will not be), letting the next batch sign at the nonce after it.
   */
  private async sendTurn(): Promise<() => void> {
    let release!: () => void;
    const previous = this.sending;
    this.sending = new Promise((resolve) => (release = resolve));
    await previous;
    return release;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakeUp = done;
    });
  }

  private async work(leased: Batch): Promise<void> {
    let batch = leased;
    /** Held from signing until the transaction is sent (see sendTurn). */
    let endTurn: (() => void) | undefined;
    try {
      const records = await this.loadRecords(batch);
      const tree = isMerkleLane(batch.lane) ? await this.treeOf(batch, records) : undefined;
      if (tree && batch.root && batch.root !== tree.root) {
        throw new AnchorError("batch_inconsistent", `batch ${batch.id}: rebuilt root ${tree.root} differs from recorded ${batch.root}`, false);
      }
      for (;;) {
        if (this.stopping) return await this.o.queue.releaseBatch(batch);
        if (batch.progress === "formed" && tree) {
          const stored = await this.o.blobs.store(tree.dumpJson).catch((e) => {
            throw walrusFailure(e);
          });
          batch = await this.o.queue.saveBatch({ ...batch, progress: "uploaded", root: tree.root, blobId: stored.blobId });
          await this.o.onStep?.("uploaded", batch);
        } else if (batch.progress === "formed" || batch.progress === "uploaded") {
          endTurn ??= await this.sendTurn();
          const signed = await this.sign(batch, records, tree);
          if (signed === "anchored") return;
          batch = signed;
          await this.o.onStep?.("signed", batch);
        } else {
          let tx = batch.tx!;
          let outcome = await this.o.relay.outcome(tx);
          if (outcome.state === "pending") {
            const replacement = await this.o.relay.replacement(relayCall(batch, records), tx);
            if (replacement) {
              batch = await this.o.queue.saveBatch({ ...batch, tx: replacement });
              this.o.onEvent?.({ type: "replaced", batchId: batch.id, message: `relay transaction ${tx.hash} replaced by ${replacement.hash} with higher fees` });
              tx = replacement;
            }
            await this.o.relay.broadcast(tx);
            endTurn?.();
            endTurn = undefined;
            await this.o.onStep?.("sent", batch);
            outcome = await this.o.relay.waitSettled(tx);
          }
          if (outcome.state === "dropped" || outcome.receipt.status !== "success") {
            // This transaction can never anchor the batch: sign anew from the step before.
            const reverted = outcome.state === "mined" ? outcome.receipt.transactionHash : undefined;
            batch = await this.o.queue.saveBatch({ ...batch, progress: tree ? "uploaded" : "formed", tx: undefined });
            this.o.onEvent?.({ type: "resigned", batchId: batch.id, reason: reverted ? "tx_reverted" : "tx_dropped" });
            if (reverted) throw new AnchorError("tx_reverted", `relay transaction ${reverted} reverted`, false);
            continue;
          }
          const { receipt } = outcome;
          const feeWei = receipt.effectiveGasPrice != null ? receipt.gasUsed * receipt.effectiveGasPrice : undefined; // some nodes leave it out
          await this.complete(batch, tree, receipt.transactionHash, Number(receipt.blockNumber), feeWei);
          return;
        }
      }
    } catch (e) {
      await this.failed(batch, e);
    } finally {
      endTurn?.();
    }
  }

  /** Simulates and signs the relay call, then records the signed transaction before anything is sent. */
  private async sign(batch: Batch, records: InferenceRecord[], tree: MerkleBatchTree | undefined): Promise<Batch | "anchored"> {
    try {
      const tx = await this.o.relay.prepare(relayCall(batch, records));
      return await this.o.queue.saveBatch({ ...batch, progress: "signed", tx });
    } catch (e) {
      // The contract refusing a repeated root is the last line of defence, not the plan: if it ever
      // fires, the root is on chain already, so the batch is complete with the transaction that did it.
      if (e instanceof AnchorError && e.reason === "root_already_anchored" && batch.root && tree) {
        const found = await this.o.relay.findBatchAnchor(batch.root);
        if (found) {
          this.o.onEvent?.({ type: "root_already_anchored", batchId: batch.id });
          await this.complete(batch, tree, found.transactionHash, found.blockNumber);
          return "anchored";
        }
      }
      throw e;
    }
  }

  /** The batch's tree; one that cannot be built will not be built by trying again (the batch is parked after maxAttempts, with the reason). */
  private async treeOf(batch: Batch, records: InferenceRecord[]): Promise<MerkleBatchTree> {
    try {
      return await this.buildTree(batch, records);
    } catch (e) {
      throw new AnchorError("batch_inconsistent", `batch ${batch.id}: its tree cannot be built: ${(e as Error)?.message ?? String(e)}`, false, { cause: e });
    }
  }

  private buildTree(batch: Batch, records: InferenceRecord[]): MerkleBatchTree | Promise<MerkleBatchTree> {
    const opts = { compactAbove: this.o.compactDumpAbove };
    if (batch.lane === "gateway") return buildGatewayBatchTree(records, batch.recordIds, batch.createdAt, opts);
    return records.length >= (this.o.treeThreadFrom ?? TREE_THREAD_FROM)
      ? buildBatchTreeOffThread(records, batch.recordIds, batch.createdAt, opts)
      : buildBatchTree(records, batch.recordIds, batch.createdAt, opts);
  }

  private async complete(batch: Batch, tree: MerkleBatchTree | undefined, transactionHash: Hex, blockNumber: number, feeWei?: bigint): Promise<void> {
    const base = {
      batchId: batch.id,
      transactionHash,
      blockNumber,
      network: this.o.relay.network,
      relayAddress: this.o.relay.relayAddress,
    };
    const anchoring: BatchAnchoring = tree
      ? { anchor: { kind: "batch", ...base, root: tree.root, batchSize: batch.recordIds.length, walrusBlobId: batch.blobId! }, tree: { nodes: tree.nodes, treeIndices: tree.treeIndices } }
      : { anchor: { kind: "single", ...base } };
    const done = { ...batch, anchoredTx: transactionHash, anchoredBlock: blockNumber };
    await this.o.queue.completeBatch(done, anchoring);
    this.stats.batchesAnchored++;
    this.stats.recordsAnchored += batch.recordIds.length;
    this.o.onEvent?.({ type: "anchored", batchId: batch.id, size: batch.recordIds.length, ...(feeWei !== undefined ? { feeWei } : {}) });
    await this.o.onStep?.("anchored", done);
  }

  private async failed(batch: Batch, e: unknown): Promise<void> {
    if (e instanceof LeaseLostError) {
      this.o.onEvent?.({ type: "lease_lost", batchId: batch.id, message: e.message });
      await this.o.queue.releaseBatch(batch).catch(() => undefined);
      return;
    }
    const err = classify(e, "anchoring");
    const error = { reason: err.reason, message: err.message };
    this.stats.failures++;
    const next: Batch = {
      ...batch,
      failures: batch.failures + 1,
      attempts: batch.attempts + (err.transient ? 0 : 1),
      lastError: error,
      retryAt: Date.now() + Math.min(this.backoffMax, this.backoffBase * 2 ** batch.failures),
    };
    try {
      if (!err.transient && next.attempts >= this.maxAttempts) {
        await this.o.queue.parkBatch(next, error);
        this.stats.batchesParked++;
        this.o.onEvent?.({ type: "parked", batchId: batch.id, ...error });
      } else {
        await this.o.queue.deferBatch(next);
        this.o.onEvent?.({ type: "deferred", batchId: batch.id, ...error });
      }
    } catch (e2) {
      // The store itself is failing: give the lease back; the batch is resumed once the store answers.
      await this.o.queue.releaseBatch(batch).catch(() => undefined);
      this.o.onEvent?.({ type: "loop_error", batchId: batch.id, message: (e2 as Error).message });
    }
  }

  private async loadRecords(batch: Batch): Promise<InferenceRecord[]> {
    const records = await this.o.queue.records(batch.recordIds);
    return records.map((record, i) => {
      if (!record) throw new AnchorError("batch_inconsistent", `record ${batch.recordIds[i]} of batch ${batch.id} is missing`, false);
      return record;
    });
  }
}

/** What the worker needs of a batch tree, whichever the leaf layout. */
type MerkleBatchTree = Pick<BatchTree, "root" | "dumpJson" | "nodes" | "treeIndices">;

function relayCall(batch: Batch, records: InferenceRecord[]): RelayCall {
  if (isMerkleLane(batch.lane)) {
    return { functionName: "settleBatch", args: [batch.root!, BigInt(batch.recordIds.length), toHex(batch.blobId!)] };
  }
  const r = records[0]!;
  if (r.settlementType === "settle-metadata") {
    return { functionName: "settleWithMetadata", args: [r.inputHash, r.outputHash, r.modelInfo ?? "", r.inputData ?? "", r.outputData ?? ""] };
  }
  return { functionName: "settle", args: [r.inputHash, r.outputHash] };
}

function walrusFailure(e: unknown): AnchorError {
  if (e instanceof WalrusError) {
    return new AnchorError(e.transient ? "walrus_unavailable" : "walrus_refused", e.message, e.transient, { cause: e });
  }
  return new AnchorError("walrus_unavailable", (e as Error)?.message ?? String(e), true, { cause: e });
}

