/**
 * BullQueue: the InferenceQueue on Redis through BullMQ, for many API and worker processes.
 *
 *  - API processes `enqueue`: the record is stored in a Redis hash (its status lives there for good),
 *    then added as a BullMQ job with the record id as job id (a repeat is a no-op).
 *  - Workers form batches by fetching record jobs by hand (BullMQ's manual-fetch pattern): a Lua
 *    script moves records from `queued` to `batched` and writes the batch in one atomic step, the
 *    batch becomes a job of the anchor queue, and the record jobs are completed and removed.
 *  - Anchor jobs are leased through BullMQ locks: a crashed worker's job stalls back to `wait` and
 *    another worker resumes the batch from its recorded step. Retries use `moveToDelayed`; a parked
 *    batch is a failed job (kept) that `retryParked` puts back; an anchored batch's job is removed.
 *
 * Redis should run with `appendonly yes` and `appendfsync always`: then every acknowledged write is
 * on disk before the reply, and a restarted Redis loses nothing.
 */
import { randomUUID } from "node:crypto";
import { Queue, Worker, type ConnectionOptions, type Job } from "bullmq";
import { Redis, type RedisOptions } from "ioredis";
import type { Hex } from "viem";
import { newBatchId } from "./embedded-queue.ts";
import { laneOf, type Anchor, type Lane, type RecordEntry, type RecordStatus } from "./records.ts";
import {
  LeaseLostError,
  type Batch,
  type BatchLimits,
  type EnqueueItem,
  type EnqueueResult,
  type FormResult,
  type InferenceQueue,
  type QueueStats,
} from "./queue.ts";

export interface BullQueueOptions {
  /** `redis://host:port` or ioredis options. */
  connection: string | RedisOptions;
  /** Name shared by every process of one deployment (default `inference`). */
  name?: string;
  /** BullMQ key prefix (default `bull`). */
  prefix?: string;
  /** A leased batch whose worker stops renewing its lock for this long is taken over. */
  lockDurationMs?: number;
  /** How often stalled (lock-expired) jobs are looked for. */
  stalledIntervalMs?: number;
}

const LANES: Lane[] = ["batch", "single"];
const FETCH_ROUND = 128;
const STATUSES: RecordStatus[] = ["queued", "batched", "anchored", "failed"];

const ENQUEUE_LUA = `
local status = redis.call('HGET', KEYS[1], 'status')
if status then return status end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'record', ARGV[2], 'status', 'queued', 'enqueuedAt', ARGV[3])
redis.call('HINCRBY', KEYS[2], 'queued', 1)
return 'new'`;

// KEYS: batch, counts, open, unscheduled. ARGV: batchId, doc template, record key prefix, ids...
const ASSIGN_LUA = `
local assigned = {}
for i = 4, #ARGV do
  local key = ARGV[3] .. ARGV[i]
  if redis.call('HGET', key, 'status') == 'queued' then
    redis.call('HSET', key, 'status', 'batched', 'batchId', ARGV[1])
    assigned[#assigned + 1] = ARGV[i]
  end
end
if #assigned == 0 then return assigned end
local tpl = ARGV[2]
local s, e = string.find(tpl, '"recordIds":[]', 1, true)
local doc = string.sub(tpl, 1, s - 1) .. '"recordIds":["' .. table.concat(assigned, '","') .. '"]' .. string.sub(tpl, e + 1)
redis.call('HSET', KEYS[1], 'doc', doc, 'version', 1, 'state', 'open')
redis.call('HINCRBY', KEYS[2], 'queued', -#assigned)
redis.call('HINCRBY', KEYS[2], 'batched', #assigned)
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[1])
return assigned`;

// KEYS: batch. ARGV: expected version, new doc, new state.
const SAVE_LUA = `
if redis.call('HGET', KEYS[1], 'version') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'state') ~= 'open' then return 0 end
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'version', tonumber(ARGV[1]) + 1, 'state', ARGV[3])
return 1`;

// KEYS: batch, counts, open, parked. ARGV: expected version, new doc, new state, batchId, record key prefix,
// record status to set, only-from status ('' = any but the target), then (id, field value) pairs.
const FINISH_LUA = `
if redis.call('HGET', KEYS[1], 'version') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'state') ~= 'open' then return 0 end
local target, from, field = ARGV[6], ARGV[7], ARGV[8]
local moved = 0
for i = 9, #ARGV, 2 do
  local key = ARGV[5] .. ARGV[i]
  local status = redis.call('HGET', key, 'status')
  if status and status ~= target and (from == '' or status == from) then
    redis.call('HSET', key, 'status', target, field, ARGV[i + 1])
    if target == 'anchored' then redis.call('HDEL', key, 'error') end
    redis.call('HINCRBY', KEYS[2], status, -1)
    moved = moved + 1
  end
end
redis.call('HINCRBY', KEYS[2], target, moved)
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'version', tonumber(ARGV[1]) + 1, 'state', ARGV[3])
redis.call('SREM', KEYS[3], ARGV[4])
if ARGV[3] == 'parked' then redis.call('SADD', KEYS[4], ARGV[4]) end
return 1`;

// KEYS: batch, counts, open, parked. ARGV: new doc, batchId, record key prefix, ids...
const REOPEN_LUA = `
if redis.call('HGET', KEYS[1], 'state') ~= 'parked' then return 0 end
local moved = 0
for i = 4, #ARGV do
  local key = ARGV[3] .. ARGV[i]
  if redis.call('HGET', key, 'status') == 'failed' then
    redis.call('HSET', key, 'status', 'batched')
    redis.call('HDEL', key, 'error')
    moved = moved + 1
  end
end
redis.call('HINCRBY', KEYS[2], 'failed', -moved)
redis.call('HINCRBY', KEYS[2], 'batched', moved)
redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'state', 'open')
redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('SREM', KEYS[4], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[2])
return 1`;

interface Lease {
  job: Job;
  token: string;
  timer: NodeJS.Timeout;
  lost: boolean;
}

type ScriptedRedis = Redis & {
  infEnqueue(rec: string, counts: string, id: string, record: string, now: number): Promise<string>;
  infAssign(batch: string, counts: string, open: string, unscheduled: string, ...argv: string[]): Promise<string[]>;
  infSave(batch: string, version: number, doc: string, state: string): Promise<number>;
  infFinish(batch: string, counts: string, open: string, parked: string, ...argv: (string | number)[]): Promise<number>;
  infReopen(batch: string, counts: string, open: string, parked: string, ...argv: string[]): Promise<number>;
};

export class BullQueue implements InferenceQueue {
  private readonly redis: ScriptedRedis;
  private readonly connection: RedisOptions;
  private readonly name: string;
  private readonly prefix: string;
  private readonly lockDurationMs: number;
  private readonly stalledIntervalMs: number;
  private readonly recordQueues: Record<Lane, Queue>;
  private readonly anchorQueue: Queue;
  private readonly workers = new Map<string, Promise<Worker>>();
  private readonly leases = new Map<string, Lease>();
  private lastOrphanSweep = 0;

  constructor(opts: BullQueueOptions) {
    this.connection = typeof opts.connection === "string" ? redisOptionsFromUrl(opts.connection) : opts.connection;
    this.name = opts.name ?? "inference";
    this.prefix = opts.prefix ?? "bull";
    this.lockDurationMs = opts.lockDurationMs ?? 30_000;
    this.stalledIntervalMs = opts.stalledIntervalMs ?? Math.max(1000, Math.floor(this.lockDurationMs / 2));
    this.redis = new Redis(this.connection) as ScriptedRedis;
    this.redis.on("error", () => undefined); // reconnects on its own; failed commands reject to their callers
    this.redis.defineCommand("infEnqueue", { numberOfKeys: 2, lua: ENQUEUE_LUA });
    this.redis.defineCommand("infAssign", { numberOfKeys: 4, lua: ASSIGN_LUA });
    this.redis.defineCommand("infSave", { numberOfKeys: 1, lua: SAVE_LUA });
    this.redis.defineCommand("infFinish", { numberOfKeys: 4, lua: FINISH_LUA });
    this.redis.defineCommand("infReopen", { numberOfKeys: 4, lua: REOPEN_LUA });
    const queueOpts = { connection: this.connection as ConnectionOptions, prefix: this.prefix };
    this.recordQueues = { batch: new Queue(`${this.name}-records-batch`, queueOpts), single: new Queue(`${this.name}-records-single`, queueOpts) };
    this.anchorQueue = new Queue(`${this.name}-anchor`, queueOpts);
    for (const q of [...Object.values(this.recordQueues), this.anchorQueue]) q.on("error", () => undefined);
  }

  private key(kind: string, id = ""): string {
    return `${this.prefix}:${this.name}:inf:${kind}${id ? `:${id}` : ""}`;
  }

  /** Record keys are this prefix plus the id (the Lua scripts build them). */
  private get recPrefix(): string {
    return `${this.prefix}:${this.name}:inf:rec:`;
  }

  async enqueue(items: readonly EnqueueItem[]): Promise<EnqueueResult[]> {
    const now = Date.now();
    const results = await Promise.all(
      items.map(async ({ id, record }): Promise<EnqueueResult> => {
        const status = await this.redis.infEnqueue(this.key("rec", id), this.key("counts"), id, JSON.stringify(record), now);
        return status === "new" ? { id, created: true, status: "queued" } : { id, created: false, status: status as RecordStatus };
      }),
    );
    // Jobs are added for every record still queued, new or not: a crash between the two writes of
    // an earlier attempt must not leave a queued record without its job. Job ids make this a no-op.
    for (const lane of LANES) {
      const jobs = items
        .filter((item, i) => results[i]!.status === "queued" && laneOf(item.record.settlementType) === lane)
        .map((item) => ({ name: "record", data: { id: item.id }, opts: { jobId: item.id, removeOnComplete: true } }));
      if (jobs.length) await this.recordQueues[lane].addBulk(jobs);
    }
    return results;
  }

  async get(id: Hex): Promise<RecordEntry | undefined> {
    return parseRecord(await this.redis.hgetall(this.key("rec", id)));
  }

  async getMany(ids: readonly Hex[]): Promise<(RecordEntry | undefined)[]> {
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hgetall(this.key("rec", id));
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([err, value]) => {
      if (err) throw err;
      return parseRecord(value as Record<string, string>);
    });
  }

  async formBatch(lane: Lane, limits: BatchLimits): Promise<FormResult> {
    const queue = this.recordQueues[lane];
    const waiting = await queue.getWaitingCount();
    if (waiting === 0) return {};
    if (waiting < limits.maxSize) {
      const [oldest] = await queue.getJobs(["wait"], 0, 0, true);
      const age = oldest ? Date.now() - oldest.timestamp : 0;
      if (oldest && age < limits.maxWaitMs) return { retryInMs: limits.maxWaitMs - age };
    }
    const worker = await this.worker(queue.name);
    const token = randomUUID();
    // Fetched in concurrent rounds: with appendfsync always, Redis fsyncs once per round, not per job.
    const jobs: Job[] = [];
    for (;;) {
      const want = Math.min(FETCH_ROUND, limits.maxSize - jobs.length);
      if (want <= 0) break;
      const got = (await Promise.all(Array.from({ length: want }, () => worker.getNextJob(token, { block: false })))).filter(Boolean) as Job[];
      jobs.push(...got);
      if (got.length < want) break;
    }
    if (jobs.length === 0) return {};
    const now = Date.now();
    const skeleton: Batch = {
      recordIds: [],
      id: newBatchId(now),
      lane,
      createdAt: new Date(now).toISOString(),
      state: "open",
      progress: "formed",
      version: 1,
      attempts: 0,
      failures: 0,
    };
    const assigned = (await this.redis.infAssign(
      this.key("batch", skeleton.id),
      this.key("counts"),
      this.key("open"),
      this.key("unscheduled"),
      skeleton.id,
      JSON.stringify(skeleton),
      this.recPrefix,
      ...jobs.map((j) => (j.data as { id: string }).id),
    )) as Hex[];
    if (assigned.length) await this.schedule(skeleton.id);
    // The records are now carried by the batch; their jobs are done (and removed).
    await Promise.all(jobs.map((j) => j.moveToCompleted("batched", token, false)));
    return assigned.length ? { batch: { ...skeleton, recordIds: assigned } } : {};
  }

  async leaseBatch(): Promise<Batch | undefined> {
    await this.sweepUnscheduled();
    const worker = await this.worker(this.anchorQueue.name);
    for (;;) {
      const token = randomUUID();
      const job = await worker.getNextJob(token, { block: false });
      if (!job) return undefined;
      const batch = await this.getBatch((job.data as { batchId: string }).batchId);
      if (!batch || batch.state !== "open") {
        // Anchored or parked by a worker that died before finishing the job: nothing left to do.
        await job.moveToCompleted(batch?.state ?? "missing", token, false);
        continue;
      }
      if ((batch.retryAt ?? 0) > Date.now()) {
        await job.moveToDelayed(batch.retryAt!, token);
        continue;
      }
      const lease: Lease = { job, token, lost: false, timer: setInterval(() => this.renew(lease), Math.floor(this.lockDurationMs / 3)) };
      this.leases.set(batch.id, lease);
      return batch;
    }
  }

  async saveBatch(batch: Batch): Promise<Batch> {
    const next = { ...batch, version: batch.version + 1 };
    this.assertLease(batch.id);
    const ok = await this.redis.infSave(this.key("batch", batch.id), batch.version, JSON.stringify(next), "open");
    if (!ok) throw new LeaseLostError(batch.id);
    return next;
  }

  async completeBatch(batch: Batch, anchors: ReadonlyMap<Hex, Anchor>): Promise<void> {
    const doc = { ...batch, state: "anchored" as const, version: batch.version + 1, retryAt: undefined };
    const pairs = batch.recordIds.flatMap((id) => [id, JSON.stringify(anchors.get(id) ?? null)]);
    await this.finish(batch, doc, "anchored", "", "anchor", pairs);
    await this.endLease(batch.id, (l) => l.job.moveToCompleted("anchored", l.token, false));
  }

  async deferBatch(batch: Batch): Promise<void> {
    try {
      await this.saveBatch(batch);
      await this.endLease(batch.id, (l) => l.job.moveToDelayed(batch.retryAt ?? Date.now(), l.token));
    } finally {
      this.dropLease(batch.id);
    }
  }

  async parkBatch(batch: Batch, error: { reason: string; message: string }): Promise<void> {
    try {
      const doc = { ...batch, state: "parked" as const, lastError: error, version: batch.version + 1 };
      const pairs = batch.recordIds.flatMap((id) => [id, JSON.stringify(error)]);
      await this.finish(batch, doc, "failed", "batched", "error", pairs);
      await this.endLease(batch.id, (l) => l.job.moveToFailed(new Error(`${error.reason}: ${error.message}`), l.token, false));
    } finally {
      this.dropLease(batch.id);
    }
  }

  async releaseBatch(batch: Batch): Promise<void> {
    try {
      await this.endLease(batch.id, (l) => l.job.moveToWait(l.token));
    } finally {
      this.dropLease(batch.id);
    }
  }

  async retryParked(batchId?: string): Promise<number> {
    const ids = batchId ? [batchId] : await this.redis.smembers(this.key("parked"));
    let count = 0;
    for (const id of ids) {
      const batch = await this.getBatch(id);
      if (!batch || batch.state !== "parked") continue;
      const doc = { ...batch, state: "open" as const, attempts: 0, retryAt: undefined, version: batch.version + 1 };
      const ok = await this.redis.infReopen(this.key("batch", id), this.key("counts"), this.key("open"), this.key("parked"), JSON.stringify(doc), id, this.recPrefix, ...batch.recordIds);
      if (!ok) continue;
      const job = await this.anchorQueue.getJob(id);
      if (job && (await job.isFailed())) await job.retry("failed");
      else await this.schedule(id);
      count++;
    }
    return count;
  }

  async getBatch(id: string): Promise<Batch | undefined> {
    const [doc, version, state] = await this.redis.hmget(this.key("batch", id), "doc", "version", "state");
    if (!doc) return undefined;
    return { ...(JSON.parse(doc) as Batch), version: Number(version), state: state as Batch["state"] };
  }

  async stats(): Promise<QueueStats> {
    const [counts, open, parked, ...oldestJobs] = await Promise.all([
      this.redis.hgetall(this.key("counts")),
      this.redis.scard(this.key("open")),
      this.redis.scard(this.key("parked")),
      ...LANES.map((lane) => this.recordQueues[lane].getJobs(["wait"], 0, 0, true)),
    ]);
    const records = Object.fromEntries(STATUSES.map((s) => [s, Number(counts[s] ?? 0)])) as QueueStats["records"];
    const oldest = oldestJobs.flatMap((jobs) => jobs.map((j) => j.timestamp));
    return { records, ...(oldest.length ? { oldestQueuedAt: Math.min(...oldest) } : {}), openBatches: open, parkedBatches: parked };
  }

  async close(): Promise<void> {
    for (const id of [...this.leases.keys()]) this.dropLease(id);
    const workers = await Promise.all([...this.workers.values()].map((w) => w.catch(() => undefined)));
    await Promise.all(workers.map((w) => w?.close(true).catch(() => undefined)));
    await Promise.all([...Object.values(this.recordQueues), this.anchorQueue].map((q) => q.close().catch(() => undefined)));
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  /** A manual-fetch BullMQ worker for `queueName`, created on first use (API-only processes never make one). */
  private worker(queueName: string): Promise<Worker> {
    let w = this.workers.get(queueName);
    if (!w) {
      w = (async () => {
        const worker = new Worker(queueName, null, {
          connection: { ...this.connection, maxRetriesPerRequest: null } as ConnectionOptions,
          prefix: this.prefix,
          autorun: false,
          lockDuration: this.lockDurationMs,
          stalledInterval: this.stalledIntervalMs,
          // A job that stalls goes back to wait however often: parking is the worker's decision, not BullMQ's.
          maxStalledCount: 1_000_000,
        });
        worker.on("error", () => undefined);
        await worker.waitUntilReady();
        void worker.startStalledCheckTimer();
        return worker;
      })();
      this.workers.set(queueName, w);
      w.catch(() => this.workers.delete(queueName));
    }
    return w;
  }

  private async schedule(batchId: string): Promise<void> {
    await this.anchorQueue.add("batch", { batchId }, { jobId: batchId, removeOnComplete: true, removeOnFail: false });
    await this.redis.srem(this.key("unscheduled"), batchId);
  }

  /** Batches formed by a worker that died before adding their anchor job get one here. */
  private async sweepUnscheduled(): Promise<void> {
    if (Date.now() - this.lastOrphanSweep < this.stalledIntervalMs) return;
    this.lastOrphanSweep = Date.now();
    for (const id of await this.redis.smembers(this.key("unscheduled"))) {
      const state = await this.redis.hget(this.key("batch", id), "state");
      if (state === "open") await this.schedule(id);
      else await this.redis.srem(this.key("unscheduled"), id);
    }
  }

  private async finish(batch: Batch, doc: Batch, target: RecordStatus, from: RecordStatus | "", field: string, pairs: string[]): Promise<void> {
    this.assertLease(batch.id);
    const ok = await this.redis.infFinish(
      this.key("batch", batch.id),
      this.key("counts"),
      this.key("open"),
      this.key("parked"),
      batch.version,
      JSON.stringify(doc),
      doc.state,
      batch.id,
      this.recPrefix,
      target,
      from,
      field,
      ...pairs,
    );
    if (!ok) throw new LeaseLostError(batch.id);
  }

  private renew(lease: Lease): void {
    lease.job.extendLock(lease.token, this.lockDurationMs).then(
      (ok) => {
        if (!ok) lease.lost = true;
      },
      () => undefined, // Redis unreachable: try again next tick; the lock may lapse and another worker resume
    );
  }

  private assertLease(batchId: string): void {
    const lease = this.leases.get(batchId);
    if (!lease || lease.lost) throw new LeaseLostError(batchId);
  }

  private async endLease(batchId: string, end: (lease: Lease) => Promise<unknown>): Promise<void> {
    const lease = this.leases.get(batchId);
    if (!lease) return;
    this.dropLease(batchId);
    // The batch's state is already recorded; if this fails, the job stalls back and is tidied up later.
    await end(lease).catch(() => undefined);
  }

  private dropLease(batchId: string): void {
    const lease = this.leases.get(batchId);
    if (lease) clearInterval(lease.timer);
    this.leases.delete(batchId);
  }
}

function parseRecord(h: Record<string, string> | null): RecordEntry | undefined {
  if (!h || !h.record) return undefined;
  return {
    id: h.id as Hex,
    record: JSON.parse(h.record),
    status: h.status as RecordStatus,
    enqueuedAt: Number(h.enqueuedAt),
    ...(h.batchId ? { batchId: h.batchId } : {}),
    ...(h.anchor && h.anchor !== "null" ? { anchor: JSON.parse(h.anchor) as Anchor } : {}),
    ...(h.error ? { error: JSON.parse(h.error) } : {}),
  };
}

function redisOptionsFromUrl(url: string): RedisOptions {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.pathname.length > 1 ? { db: Number(u.pathname.slice(1)) } : {}),
    ...(u.protocol === "rediss:" ? { tls: {} } : {}),
  };
}
