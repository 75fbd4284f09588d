/**
 * The intake facade the HTTP layer calls: validate at the door, enqueue durably, answer per record;
 * look records up with their proofs; run workers.
 */
import { Reason, reject, type Rejection } from "@facilitator/core";
import type { Address, Hex } from "viem";
import type { InferenceQueue, QueueStats } from "./queue.ts";
import type { RecordEntry, RecordStatus, SettlementType } from "./records.ts";
import type { KnownTee, TeeLookup } from "./tee-directory.ts";
import { validateRecord, type ValidateOptions, type ValidationConfig, type ValidationResult } from "./validation.ts";
import { startWorker, type AnchorWorkerOptions, type WorkerHandle, type WorkerStats } from "./worker.ts";

export type SubmitResult =
  /** Accepted (`duplicate`: the same record was accepted before; nothing new was stored). */
  | { id: Hex; status: RecordStatus; duplicate: boolean }
  | { error: Rejection };

/** What `GET /inference/settlements/:id` shows. Anchor fields are present once anchored. */
export interface RecordView {
  id: Hex;
  status: RecordStatus;
  settlementType: SettlementType;
  inputHash: Hex;
  outputHash: Hex;
  teeId?: Hex;
  teeTimestamp?: string;
  teeSignature?: Hex;
  /** "rsa-pss-sha256" for a tee-gateway record (absent: TEE attestation v2). */
  signatureScheme?: string;
  /** The x402 payment the inference was paid with, when it came through `/settle`. */
  payment?: { network: string; transaction: string };
  enqueuedAt: string;
  batchId?: string;
  error?: { reason: string; message: string };
  root?: Hex;
  index?: number;
  proof?: Hex[];
  batchSize?: number;
  walrusBlobId?: string;
  transactionHash?: Hex;
  blockNumber?: number;
  network?: string;
  relayAddress?: Address;
}

export interface InferenceMetrics extends QueueStats {
  /** Summed over this process's workers. */
  workers: WorkerStats;
}

/**
 * The queue could not be reached; the caller should retry (HTTP 503). A retry is safe: records the failed
 * call did store (its reply was lost) answer duplicate and are anchored once.
 */
export class InferenceUnavailableError extends Error {
  readonly reason = Reason.unavailable;
  constructor(cause: unknown) {
    super(`the inference queue is unavailable: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.name = "InferenceUnavailableError";
  }
}

export interface InferenceServiceOptions {
  queue: InferenceQueue;
  validation: ValidationConfig;
  /** Where the records' TEEs are looked up beside `validation.teeKeys` (the TEERegistry, cached). */
  tees?: TeeLookup;
  /** Records accepted in one `submit` call (default 1000). */
  maxRecordsPerSubmit?: number;
}

const RECORD_ID = /^0x[0-9a-f]{64}$/;

export class InferenceService {
  readonly queue: InferenceQueue;
  readonly maxRecordsPerSubmit: number;
  private readonly validation: ValidationConfig;
  private readonly tees?: TeeLookup;
  private readonly workers = new Set<WorkerHandle>();

  constructor(opts: InferenceServiceOptions) {
    this.queue = opts.queue;
    this.validation = opts.validation;
    this.tees = opts.tees;
    this.maxRecordsPerSubmit = opts.maxRecordsPerSubmit ?? 1000;
  }

  /**
   * Validates every record on its own and durably enqueues the valid ones before resolving. One
   * result per input, in order. Throws InferenceUnavailableError if the queue fails (a retry is safe).
   * `authenticated`: the caller presented an inference key; without it only records signed by a
   * registered TEE are accepted (see validation.ts).
   */
  async submit(inputs: readonly unknown[], opts: ValidateOptions = {}): Promise<SubmitResult[]> {
    if (inputs.length > this.maxRecordsPerSubmit) {
      const error = reject(Reason.payloadTooLarge, `at most ${this.maxRecordsPerSubmit} records per request`);
      return inputs.map(() => ({ error }));
    }
    const known = await this.lookupTees(inputs);
    const checked = inputs.map((input) => validateRecord(input, this.validation, { ...opts, ...known }));
    const valid = checked.flatMap((c) => (c.ok ? [{ id: c.id, record: c.record }] : []));
    let stored: Awaited<ReturnType<InferenceQueue["enqueue"]>> = [];
    if (valid.length) {
      try {
        stored = await this.queue.enqueue(valid);
      } catch (e) {
        throw new InferenceUnavailableError(e);
      }
      for (const w of this.workers) w.wake();
    }
    let next = 0;
    return checked.map((c): SubmitResult => {
      if (!c.ok) return { error: { reason: c.reason, message: c.message } };
      const s = stored[next++]!;
      return { id: s.id, status: s.status, duplicate: !s.created };
    });
  }

  /** Validates one record as `submit` would, storing nothing (the /settle headers' check before any payment moves). */
  async check(input: unknown, opts: ValidateOptions = {}): Promise<ValidationResult> {
    return validateRecord(input, this.validation, { ...opts, ...(await this.lookupTees([input])) });
  }

  /** The TEEs the inputs name, from the registry (an outage is InferenceUnavailableError: retry), and the time to judge them by. */
  private async lookupTees(inputs: readonly unknown[]): Promise<Pick<ValidateOptions, "tees" | "nowSeconds">> {
    const nowSeconds = Math.floor(Date.now() / 1000);
    const ids = inputs.flatMap(namedTeeId);
    if (!this.tees || ids.length === 0) return { nowSeconds };
    let tees: ReadonlyMap<string, KnownTee>;
    try {
      tees = await this.tees.lookup(ids);
    } catch (e) {
      // The RPC's error text can name its URL (and a key in it): callers get a plain sentence.
      throw new InferenceUnavailableError(new Error("the TEE registry cannot be read now", { cause: e }));
    }
    return { tees, nowSeconds };
  }

  /** The record, its status and (once anchored) its proof; undefined for an unknown or malformed id. */
  async status(id: string): Promise<RecordView | undefined> {
    if (!RECORD_ID.test(id.toLowerCase())) return undefined;
    const entry = await this.queue.get(id.toLowerCase() as Hex);
    return entry && toRecordView(entry);
  }

  /** Starts a worker on this service's queue; records submitted here wake it at once. */
  startWorker(opts: Omit<AnchorWorkerOptions, "queue">): WorkerHandle {
    const handle = startWorker({ ...opts, queue: this.queue });
    const tracked: WorkerHandle = {
      stop: async () => {
        await handle.stop();
        this.workers.delete(tracked);
      },
      wake: handle.wake,
      stats: handle.stats,
    };
    this.workers.add(tracked);
    return tracked;
  }

  /** Re-opens parked batches (e.g. after the relayer role is restored); returns how many. */
  retryParked(batchId?: string): Promise<number> {
    return this.queue.retryParked(batchId);
  }

  async metrics(): Promise<InferenceMetrics> {
    const workers: WorkerStats = { batchesAnchored: 0, recordsAnchored: 0, batchesParked: 0, failures: 0 };
    for (const w of this.workers) {
      const s = w.stats();
      for (const k of Object.keys(workers) as (keyof WorkerStats)[]) workers[k] += s[k];
    }
    return { ...(await this.queue.stats()), workers };
  }

  /** Stops this service's workers (each finishes its step) and closes the queue. */
  async close(): Promise<void> {
    await Promise.all([...this.workers].map((w) => w.stop()));
    await this.queue.close();
  }
}

/** The teeId an input names (either spelling), when it is 32-byte hex: only those are worth a registry read. */
function namedTeeId(input: unknown): string[] {
  if (typeof input !== "object" || input === null) return [];
  const r = input as Record<string, unknown>;
  const id = r.teeId ?? r.tee_id;
  return typeof id === "string" && /^0x[0-9a-fA-F]{64}$/.test(id) ? [id.toLowerCase()] : [];
}

export function toRecordView(entry: RecordEntry): RecordView {
  const r = entry.record;
  const a = entry.anchor;
  return {
    id: entry.id,
    status: entry.status,
    settlementType: r.settlementType,
    inputHash: r.inputHash,
    outputHash: r.outputHash,
    ...(r.teeId ? { teeId: r.teeId } : {}),
    ...(r.teeTimestamp !== undefined ? { teeTimestamp: r.teeTimestamp } : {}),
    ...(r.teeSignature ? { teeSignature: r.teeSignature } : {}),
    ...(r.signatureScheme ? { signatureScheme: r.signatureScheme } : {}),
    ...(r.payment ? { payment: r.payment } : {}),
    enqueuedAt: new Date(entry.enqueuedAt).toISOString(),
    ...(entry.batchId ? { batchId: entry.batchId } : {}),
    ...(entry.error ? { error: entry.error } : {}),
    ...(a && entry.status === "anchored"
      ? {
          ...(a.root ? { root: a.root, index: a.index, proof: a.proof, batchSize: a.batchSize, walrusBlobId: a.walrusBlobId } : {}),
          transactionHash: a.transactionHash,
          blockNumber: a.blockNumber,
          network: a.network,
          relayAddress: a.relayAddress,
        }
      : {}),
  };
}
