/**
 * BullQueue: the InferenceQueue on Redis, for many API and worker processes.
 *
 *  - API processes `enqueue` with one Lua script per call: each new record's hash (its status lives
 *    there for good) and its place in its lane's waiting list are written together, atomically, or not
 *    at all. There is no moment at which a record is stored but not waiting, so a caller that saw an
 *    error and retries finds its records either absent (stored now) or complete (a duplicate that will
 *    be anchored like any other).
 *  - Workers form a batch with one Lua script too: it takes the oldest waiting ids of a lane, moves the
 *    records from `queued` to `batched` and writes the batch, in one atomic step.
 *  - Batches are BullMQ jobs of the anchor queue, leased through BullMQ locks: a crashed worker's job
 *    stalls back to `wait` and another worker resumes the batch from its recorded step. Retries use
 *    `moveToDelayed`; a parked batch is a failed job (kept) that `retryParked` puts back; an anchored
 *    batch's job is removed.
 *
 * Records are not BullMQ jobs: a record needs no lock or retry of its own, only its place in line,
 * and a job costs a heavy script per record (job hash, events stream, counters) plus client work.
 * With a job per record, intake cost about 50 µs of client CPU and 40 µs of Redis CPU per record;
 * with the list, 4-5 µs and 7-12 µs (bench/inference.ts --sections intake).
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
const STATUSES: RecordStatus[] = ["queued", "batched", "anchored", "failed"];
/** How long an intake call's answer is kept for a resend of the same call (one byte per record). */
const ANSWER_TTL_S = 600;
const STATUS_BY_LETTER = Object.fromEntries(STATUSES.map((s) => [s[0], s])) as Record<string, RecordStatus>;

// KEYS: counts, waiting list of the batch lane, of the single lane, this call's answer.
// ARGV: record key prefix, enqueuedAt, answer TTL (s), then (id, lane key index 2|3, record JSON) per record.
// Returns one letter per record: 'n' (new) or the first letter of the status it already had. The
// answer is kept for a while: ioredis sends a command again when the connection dropped before its
// reply, and that second run must give the first run's answer (records it created are new to this
// call, not duplicates).
const ENQUEUE_LUA = `
local answered = redis.call('GET', KEYS[4])
if answered then return answered end
local out, added = {}, 0
for i = 4, #ARGV, 3 do
  local id = ARGV[i]
  local key = ARGV[1] .. id
  local status = redis.call('HGET', key, 'status')
  if status then
    out[#out + 1] = string.sub(status, 1, 1)
  else
    redis.call('HSET', key, 'id', id, 'record', ARGV[i + 2], 'status', 'queued', 'enqueuedAt', ARGV[2])
    redis.call('RPUSH', KEYS[tonumber(ARGV[i + 1])], id)
    added = added + 1
    out[#out + 1] = 'n'
  end
end
if added > 0 then redis.call('HINCRBY', KEYS[1], 'queued', added) end
local answer = table.concat(out)
redis.call('SET', KEYS[4], answer, 'EX', ARGV[3])
return answer`;

// KEYS: waiting list, batch, counts, open, unscheduled.
// ARGV: record key prefix, max size, max wait ms, now, batchId, doc template.
// Returns {} (nothing waiting), {'wait', ms} (too few and too young), or {'formed', ids...}.
const FORM_LUA = `
local waiting = redis.call('LLEN', KEYS[1])
if waiting == 0 then return {} end
local maxSize, maxWait, now = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if waiting < maxSize then
  local oldest = tonumber(redis.call('HGET', ARGV[1] .. redis.call('LINDEX', KEYS[1], 0), 'enqueuedAt') or 0)
  if now - oldest < maxWait then return {'wait', oldest + maxWait - now} end
end
local ids = redis.call('LRANGE', KEYS[1], 0, maxSize - 1)
redis.call('LTRIM', KEYS[1], #ids, -1)
local assigned = {}
for _, id in ipairs(ids) do
  local key = ARGV[1] .. id
  if redis.call('HGET', key, 'status') == 'queued' then
    redis.call('HSET', key, 'status', 'batched', 'batchId', ARGV[5])
    assigned[#assigned + 1] = id
  end
end
if #assigned == 0 then return {} end
local tpl = ARGV[6]
local s, e = string.find(tpl, '"recordIds":[]', 1, true)
local doc = string.sub(tpl, 1, s - 1) .. '"recordIds":["' .. table.concat(assigned, '","') .. '"]' .. string.sub(tpl, e + 1)
redis.call('HSET', KEYS[2], 'doc', doc, 'version', 1, 'state', 'open')
redis.call('HINCRBY', KEYS[3], 'queued', -#assigned)
redis.call('HINCRBY', KEYS[3], 'batched', #assigned)
redis.call('SADD', KEYS[4], ARGV[5])
redis.call('SADD', KEYS[5], ARGV[5])
table.insert(assigned, 1, 'formed')
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
  infEnqueue(counts: string, waitBatch: string, waitSingle: string, answer: string, ...argv: (string | number)[]): Promise<string>;
  infForm(waiting: string, batch: string, counts: string, open: string, unscheduled: string, ...argv: (string | number)[]): Promise<(string | number)[]>;
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
  private readonly anchorQueue: Queue;
  private anchorWorker?: Promise<Worker>;
  private readonly leases = new Map<string, Lease>();
  private lastOrphanSweep = 0;

  constructor(opts: BullQueueOptions) {
    this.connection = typeof opts.connection === "string" ? redisOptionsFromUrl(opts.connection) : opts.connection;
    this.name = opts.name ?? "inference";
    this.prefix = opts.prefix ?? "bull";
    this.lockDurationMs = opts.lockDurationMs ?? 30_000;
    this.stalledIntervalMs = opts.stalledIntervalMs ?? Math.max(1000, Math.floor(this.lockDurationMs / 2));
    this.redis = new Redis({ maxRetriesPerRequest: 1, ...this.connection }) as ScriptedRedis;
    this.redis.on("error", () => undefined); // reconnects on its own; failed commands reject to their callers
    // Once connected, a command fails at once while Redis is away (the intake door answers 503 now, not
    // after ioredis's 20 reconnect attempts); until then, the first commands wait for the connection.
    // One in flight when the connection drops is sent again after the reconnect, or fails if that fails.
    this.redis.once("ready", () => void (this.redis.options.enableOfflineQueue = false));
    this.redis.defineCommand("infEnqueue", { numberOfKeys: 4, lua: ENQUEUE_LUA });
    this.redis.defineCommand("infForm", { numberOfKeys: 5, lua: FORM_LUA });
    this.redis.defineCommand("infSave", { numberOfKeys: 1, lua: SAVE_LUA });
    this.redis.defineCommand("infFinish", { numberOfKeys: 4, lua: FINISH_LUA });
    this.redis.defineCommand("infReopen", { numberOfKeys: 4, lua: REOPEN_LUA });
    this.anchorQueue = new Queue(`${this.name}-anchor`, { connection: this.connection as ConnectionOptions, prefix: this.prefix });
    this.anchorQueue.on("error", () => undefined);
  }

  private key(kind: string, id = ""): string {
    return `${this.prefix}:${this.name}:inf:${kind}${id ? `:${id}` : ""}`;
  }

  /** Record keys are this prefix plus the id (the Lua scripts build them). */
  private get recPrefix(): string {
    return `${this.prefix}:${this.name}:inf:rec:`;
  }

  async enqueue(items: readonly EnqueueItem[]): Promise<EnqueueResult[]> {
    if (items.length === 0) return [];
    const argv: (string | number)[] = [this.recPrefix, Date.now(), ANSWER_TTL_S];
    for (const { id, record } of items) argv.push(id, laneOf(record.settlementType) === "batch" ? 2 : 3, JSON.stringify(record));
    const answer = this.key("answer", randomUUID());
    const letters = await this.redis.infEnqueue(this.key("counts"), this.key("waiting", "batch"), this.key("waiting", "single"), answer, ...argv);
    return items.map(({ id }, i) => (letters[i] === "n" ? { id, created: true, status: "queued" } : { id, created: false, status: STATUS_BY_LETTER[letters[i]!]! }));
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
    const [outcome, ...rest] = await this.redis.infForm(
      this.key("waiting", lane),
      this.key("batch", skeleton.id),
      this.key("counts"),
      this.key("open"),
      this.key("unscheduled"),
      this.recPrefix,
      limits.maxSize,
      limits.maxWaitMs,
      now,
      skeleton.id,
      JSON.stringify(skeleton),
    );
    if (outcome === "wait") return { retryInMs: Number(rest[0]) };
    if (outcome !== "formed") return {};
    await this.schedule(skeleton.id);
    return { batch: { ...skeleton, recordIds: rest as Hex[] } };
  }

  async leaseBatch(): Promise<Batch | undefined> {
    await this.sweepUnscheduled();
    const worker = await this.worker();
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
    const [counts, open, parked, ...heads] = await Promise.all([
      this.redis.hgetall(this.key("counts")),
      this.redis.scard(this.key("open")),
      this.redis.scard(this.key("parked")),
      ...LANES.map((lane) => this.redis.lindex(this.key("waiting", lane), 0)),
    ]);
    const records = Object.fromEntries(STATUSES.map((s) => [s, Number(counts[s] ?? 0)])) as QueueStats["records"];
    const waitingSince = await Promise.all(heads.flatMap((id) => (id ? [this.redis.hget(this.key("rec", id), "enqueuedAt")] : [])));
    const oldest = waitingSince.flatMap((at) => (at ? [Number(at)] : []));
    return { records, ...(oldest.length ? { oldestQueuedAt: Math.min(...oldest) } : {}), openBatches: open, parkedBatches: parked };
  }

  async close(): Promise<void> {
    for (const id of [...this.leases.keys()]) this.dropLease(id);
    const worker = await this.anchorWorker?.catch(() => undefined);
    await worker?.close(true).catch(() => undefined);
    await this.anchorQueue.close().catch(() => undefined);
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  /** The manual-fetch BullMQ worker of the anchor queue, created on first use (API-only processes never make one). */
  private worker(): Promise<Worker> {
    if (!this.anchorWorker) {
      const created = (async () => {
        const worker = new Worker(this.anchorQueue.name, null, {
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
      this.anchorWorker = created;
      created.catch(() => {
        if (this.anchorWorker === created) this.anchorWorker = undefined;
      });
    }
    return this.anchorWorker;
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
