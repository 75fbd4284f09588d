/**
 * BullQueue: the InferenceQueue on Redis, for many API and worker processes.
 *
 *  - API processes `enqueue` with one Lua script per call (calls made in the same turn of the event
 *    loop go as one, so the append-only file is fsync'd once for them): each new record's hash (its
 *    status lives there for good) and its place in its lane's waiting list are written together,
 *    atomically, or not at all. There is no moment at which a record is stored but not waiting, so a caller that saw an
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
 *
 * On a Redis Cluster (a `redis+cluster://` connection) every script's keys share a slot: the queue's
 * state lives in partitions, one hash tag each, and BullMQ's keys under a prefix with a hash tag
 * (`{bull}`), as BullMQ documents for clusters (see bull-queue/keys.ts).
 *
 * The parts, in ./bull-queue/: keys.ts (the Redis key layout and its partitions), leases.ts (BullMQ job
 * locks held per batch), scripts.ts (loads commands/*.lua and calls them with their KEYS and ARGV).
 */
import { randomUUID } from "node:crypto";
import { Queue, Worker, type ConnectionOptions } from "bullmq";
import { Redis, type RedisOptions } from "ioredis";
import type { Hex } from "viem";
import { hashedPart, isClusterUrl, openRedis, type RedisClient, type Replication } from "@facilitator/redis";
import { siblingSlots } from "@facilitator/merkle";
import { LANES, RECORD_STATUSES, type Anchor, type InferenceRecord, type Lane, type RecordEntry, type RecordStatus } from "./records.ts";
import {
  LeaseLostError,
  newBatch,
  type Batch,
  type BatchAnchor,
  type BatchAnchoring,
  type BatchLimits,
  type EnqueueItem,
  type EnqueueResult,
  type FormResult,
  type InferenceQueue,
  type QueueStats,
} from "./queue.ts";
import { QueueLayout, type QueueKeys } from "./bull-queue/keys.ts";
import { BatchLeases } from "./bull-queue/leases.ts";
import { QueueScripts, type RecordMove } from "./bull-queue/scripts.ts";

interface IntakeGroup {
  items: EnqueueItem[];
  done: Promise<EnqueueResult[]>;
}

/** A group of intake calls closes at this many records: one script holds Redis a few µs a record, a few ms for the group. */
const INTAKE_GROUP_MAX = 2_048;

/** Records read per script call by `records`: at about 1 KB a gateway record, replies of some 16 MB. */
const RECORDS_PER_READ = 16_384;

export interface BullQueueOptions {
  /** A REDIS_URL (`redis://host:port`, or `redis+cluster://host:port,host:port` for a Redis Cluster), or ioredis options for one Redis. */
  connection: string | RedisOptions;
  /** Name shared by every process of one deployment (default `inference`). */
  name?: string;
  /** BullMQ key prefix: default `bull`, and `{bull}` on a Redis Cluster, where it must carry a hash tag. */
  prefix?: string;
  /** Partitions of the queue's records and batches (bull-queue/keys.ts); default 1. Fixed for a deployment's life. */
  partitions?: number;
  /** Acknowledge the queue's writes only once this many replicas hold them (WAIT); default: don't wait. */
  replication?: Replication;
  /** A leased batch whose worker stops renewing its lock for this long is taken over. */
  lockDurationMs?: number;
  /** How often stalled (lock-expired) jobs are looked for. */
  stalledIntervalMs?: number;
}

export class BullQueue implements InferenceQueue {
  private readonly redis: RedisClient;
  /** One Redis: the options BullMQ opens its connections with. */
  private readonly connection: RedisOptions;
  /** A Redis Cluster: BullMQ is handed clients (it cannot open a cluster from options); closed here. */
  private readonly clusterUrl?: string;
  private readonly bullClients: RedisClient[] = [];
  private readonly prefix: string;
  private readonly lockDurationMs: number;
  private readonly stalledIntervalMs: number;
  private readonly layout: QueueLayout;
  private readonly scripts: QueueScripts;
  private readonly leases: BatchLeases;
  private readonly anchorQueue: Queue;
  private anchorWorker?: Promise<Worker>;
  private lastOrphanSweep = 0;
  /** Intake calls of this turn of the event loop, sent together (see enqueue). */
  private intake?: IntakeGroup;
  /** Where the next `formBatch` starts looking, so every partition gets its turn. */
  private nextPartition = 0;

  constructor(opts: BullQueueOptions) {
    const url = typeof opts.connection === "string" ? opts.connection : undefined;
    if (url && isClusterUrl(url)) this.clusterUrl = url;
    this.connection = typeof opts.connection === "string" ? (this.clusterUrl ? {} : redisOptionsFromUrl(opts.connection)) : opts.connection;
    this.prefix = opts.prefix ?? (this.clusterUrl ? "{bull}" : "bull");
    if (this.clusterUrl && hashedPart(this.prefix) === this.prefix) throw new Error(`BullQueue on a Redis Cluster: the prefix needs a hash tag, such as {bull} (got "${this.prefix}")`);
    this.layout = new QueueLayout(this.prefix, opts.name ?? "inference", opts.partitions ?? 1);
    this.lockDurationMs = opts.lockDurationMs ?? 30_000;
    this.stalledIntervalMs = opts.stalledIntervalMs ?? Math.max(1000, Math.floor(this.lockDurationMs / 2));
    this.leases = new BatchLeases(this.lockDurationMs);
    this.redis = this.clusterUrl ? openRedis(this.clusterUrl, { maxRetriesPerRequest: 1 }) : new Redis({ maxRetriesPerRequest: 1, ...this.connection });
    this.redis.on("error", () => undefined); // reconnects on its own; failed commands reject to their callers
    // Once connected, a command fails at once while Redis is away (the intake door answers 503 now, not
    // after ioredis's 20 reconnect attempts); until then, the first commands wait for the connection.
    // One in flight when the connection drops is sent again after the reconnect, or fails if that fails.
    this.redis.once("ready", () => void (this.redis.options.enableOfflineQueue = false));
    this.scripts = new QueueScripts(this.redis, opts.replication);
    this.anchorQueue = new Queue(this.layout.anchorQueueName, { connection: this.bullConnection(false), prefix: this.prefix });
    this.anchorQueue.on("error", () => undefined);
  }

  async enqueue(items: readonly EnqueueItem[]): Promise<EnqueueResult[]> {
    if (items.length === 0) return [];
    // Calls made in the same turn of the event loop go to Redis together, as one call: fewer, larger
    // writes, each made durable by one fsync of the append-only file instead of one per call.
    if (!this.intake || this.intake.items.length >= INTAKE_GROUP_MAX) {
      const group: IntakeGroup = { items: [], done: undefined! };
      group.done = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        if (this.intake === group) this.intake = undefined;
        return this.enqueueNow(group.items);
      });
      this.intake = group;
    }
    const group = this.intake;
    const from = group.items.length;
    group.items.push(...items);
    return (await group.done).slice(from, from + items.length);
  }

  private async enqueueNow(items: readonly EnqueueItem[]): Promise<EnqueueResult[]> {
    const now = Date.now();
    const known: (RecordStatus | undefined)[] = [];
    // One script per partition: each record is stored with its place in line, or not at all.
    await Promise.all(
      [...this.byPartition(items.map((item) => item.id))].map(async ([p, indexes]) => {
        const statuses = await this.scripts.enqueue(this.layout.partitions[p]!, indexes.map((i) => items[i]!), now);
        indexes.forEach((i, n) => (known[i] = statuses[n]));
      }),
    );
    return items.map(({ id }, i) => (known[i] ? { id, created: false, status: known[i] } : { id, created: true, status: "queued" }));
  }

  async get(id: Hex): Promise<RecordEntry | undefined> {
    return (await this.getMany([id]))[0];
  }

  async getMany(ids: readonly Hex[]): Promise<(RecordEntry | undefined)[]> {
    const out: (RecordEntry | undefined)[] = [];
    // A pipeline per partition: on a cluster a pipeline's keys must share a slot.
    await Promise.all(
      [...this.byPartition(ids)].map(async ([p, indexes]) => {
        const k = this.layout.partitions[p]!;
        const hashes = await this.exec(indexes.map((i) => ["hgetall", k.record(ids[i]!)]));
        const entries = hashes.map((h, n) => parseRecord(ids[indexes[n]!]!, h as Record<string, string>));
        await this.addAnchors(k, entries);
        indexes.forEach((i, n) => (out[i] = entries[n]));
      }),
    );
    return ids.map((_, i) => out[i]);
  }

  /** Runs commands of one partition (one slot) in one round trip; their replies, or the first error. */
  private async exec(commands: (string | number)[][]): Promise<unknown[]> {
    const replies = (await this.redis.pipeline(commands).exec()) ?? [];
    return replies.map(([err, value]) => {
      if (err) throw err;
      return value;
    });
  }

  /**
   * Gives each anchored entry of one partition its anchor: its batch's, with its index and the proof
   * read off the batch's nodes (the slots its path needs, not the whole tree). One round trip.
   */
  private async addAnchors(k: QueueKeys, entries: (StoredEntry | undefined)[]): Promise<void> {
    const pending = entries.filter((e): e is StoredEntry => e?.status === "anchored" && !e.anchor && e.batchId !== undefined);
    if (pending.length === 0) return;
    const batchIds = [...new Set(pending.map((e) => e.batchId!))];
    const paths = pending.map((e) => (e.place ? siblingSlots(e.place[1]) : []));
    const replies = await this.exec([
      ...batchIds.map((id) => ["hget", k.batch(id), "anchor"]),
      ...pending.flatMap((e, n) => paths[n]!.map((slot) => ["getrangeBuffer", k.batchNodes(e.batchId!), 32 * slot, 32 * slot + 31])),
    ]);
    const shared = new Map(batchIds.map((id, n) => [id, replies[n] ? (JSON.parse(replies[n] as string) as BatchAnchor) : undefined]));
    let next = batchIds.length;
    pending.forEach((e, n) => {
      const proof = paths[n]!.map(() => {
        const node = replies[next++] as Buffer;
        // A missing or cut nodes key (lost data) must not pass for a proof.
        if (node.length !== 32) throw new Error(`batch ${e.batchId}: its tree nodes are missing or incomplete in the store`);
        return `0x${node.toString("hex")}` as Hex;
      });
      const anchor = shared.get(e.batchId!);
      if (anchor) e.anchor = e.place ? { ...anchor, index: e.place[0], proof } : anchor;
      delete e.place;
    });
  }

  async formBatch(lane: Lane, limits: BatchLimits): Promise<FormResult> {
    const now = Date.now();
    const count = this.layout.partitions.length;
    const start = this.nextPartition++ % count;
    let retryInMs: number | undefined;
    for (let n = 0; n < count; n++) {
      const p = (start + n) % count;
      const fresh = newBatch(lane, now);
      const skeleton = { ...fresh, id: this.layout.batchIdIn(fresh.id, p) };
      const formed = await this.scripts.formBatch(this.layout.partitions[p]!, lane, limits, now, skeleton);
      if ("recordIds" in formed) {
        await this.schedule(skeleton.id);
        return { batch: { ...skeleton, recordIds: formed.recordIds } };
      }
      if ("retryInMs" in formed) retryInMs = Math.min(retryInMs ?? Infinity, formed.retryInMs);
    }
    return retryInMs === undefined ? {} : { retryInMs };
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
      this.leases.hold(batch.id, job, token);
      return batch;
    }
  }

  async saveBatch(batch: Batch): Promise<Batch> {
    const next = { ...batch, version: batch.version + 1 };
    this.leases.assertHeld(batch.id);
    if (!(await this.scripts.saveBatch(this.batchKeys(batch.id), batch.version, next))) throw new LeaseLostError(batch.id);
    return next;
  }

  async completeBatch(batch: Batch, anchoring: BatchAnchoring): Promise<void> {
    const doc = { ...batch, state: "anchored" as const, version: batch.version + 1, retryAt: undefined };
    const tree = anchoring.tree;
    await this.finish(batch, doc, {
      to: "anchored",
      field: "at",
      ...(tree ? { values: batch.recordIds.map((_, i) => `${i}:${tree.treeIndices[i]}`) } : {}),
      anchor: JSON.stringify(anchoring.anchor),
      ...(tree ? { nodes: tree.nodes } : {}),
    });
    await this.leases.end(batch.id, (job, token) => job.moveToCompleted("anchored", token, false));
  }

  async deferBatch(batch: Batch): Promise<void> {
    try {
      await this.saveBatch(batch);
      await this.leases.end(batch.id, (job, token) => job.moveToDelayed(batch.retryAt ?? Date.now(), token));
    } finally {
      this.leases.drop(batch.id);
    }
  }

  async parkBatch(batch: Batch, error: { reason: string; message: string }): Promise<void> {
    try {
      const doc = { ...batch, state: "parked" as const, lastError: error, version: batch.version + 1 };
      await this.finish(batch, doc, { to: "failed", from: "batched", field: "error", value: JSON.stringify(error) });
      await this.leases.end(batch.id, (job, token) => job.moveToFailed(new Error(`${error.reason}: ${error.message}`), token, false));
    } finally {
      this.leases.drop(batch.id);
    }
  }

  async releaseBatch(batch: Batch): Promise<void> {
    try {
      await this.leases.end(batch.id, (job, token) => job.moveToWait(token));
    } finally {
      this.leases.drop(batch.id);
    }
  }

  async retryParked(batchId?: string): Promise<number> {
    const ids = batchId ? [batchId] : (await Promise.all(this.layout.partitions.map((k) => this.redis.smembers(k.parked)))).flat();
    let count = 0;
    for (const id of ids) {
      const batch = await this.getBatch(id);
      if (!batch || batch.state !== "parked") continue;
      const doc = { ...batch, state: "open" as const, attempts: 0, retryAt: undefined, version: batch.version + 1 };
      if (!(await this.scripts.reopenBatch(this.batchKeys(id), batch, doc))) continue;
      const job = await this.anchorQueue.getJob(id);
      if (job && (await job.isFailed())) await job.retry("failed");
      else await this.schedule(id);
      count++;
    }
    return count;
  }

  async getBatch(id: string): Promise<Batch | undefined> {
    const key = this.batchKeys(id).batch(id);
    const [doc, version, state, ids] = await this.redis.hmget(key, "doc", "version", "state", "ids");
    if (!doc) return undefined;
    const batch = JSON.parse(doc) as Batch;
    // Formed by an earlier version, which kept the ids in doc: copied to ids once, before any write drops them from doc.
    if (ids === null && batch.recordIds.length > 0) await this.redis.hsetnx(key, "ids", batch.recordIds.join(","));
    return { ...batch, recordIds: ids ? (ids.split(",") as Hex[]) : batch.recordIds, version: Number(version), state: state as Batch["state"] };
  }

  async records(ids: readonly Hex[]): Promise<(InferenceRecord | undefined)[]> {
    const out: (InferenceRecord | undefined)[] = [];
    await Promise.all(
      [...this.byPartition(ids)].map(async ([p, indexes]) => {
        // In slices: one reply must stay far below V8's longest string, and one script must not hold Redis long.
        for (let from = 0; from < indexes.length; from += RECORDS_PER_READ) {
          const slice = indexes.slice(from, from + RECORDS_PER_READ);
          const records = JSON.parse(await this.scripts.records(this.layout.partitions[p]!, slice.map((i) => ids[i]!))) as (InferenceRecord | null)[];
          slice.forEach((i, n) => (out[i] = records[n] ?? undefined));
        }
      }),
    );
    return ids.map((_, i) => out[i]);
  }

  async stats(): Promise<QueueStats> {
    const parts = await Promise.all(this.layout.partitions.map((k) => partitionStats(this.redis, k)));
    const records = Object.fromEntries(RECORD_STATUSES.map((s) => [s, parts.reduce((sum, p) => sum + Number(p.counts[s] ?? 0), 0)])) as QueueStats["records"];
    const oldest = parts.flatMap((p) => p.oldest);
    const sum = (field: "open" | "parked") => parts.reduce((total, p) => total + p[field], 0);
    return { records, ...(oldest.length ? { oldestQueuedAt: Math.min(...oldest) } : {}), openBatches: sum("open"), parkedBatches: sum("parked") };
  }

  async close(): Promise<void> {
    this.leases.dropAll();
    const worker = await this.anchorWorker?.catch(() => undefined);
    await worker?.close(true).catch(() => undefined);
    await this.anchorQueue.close().catch(() => undefined);
    for (const c of [...this.bullClients, this.redis]) await c.quit().catch(() => c.disconnect());
  }

  /** What BullMQ connects with: options for one Redis, a client of ours for a cluster. Workers block, so they never give up on a command. */
  private bullConnection(worker: boolean): ConnectionOptions {
    if (!this.clusterUrl) return (worker ? { ...this.connection, maxRetriesPerRequest: null } : this.connection) as ConnectionOptions;
    const client = openRedis(this.clusterUrl, { maxRetriesPerRequest: worker ? null : 1 });
    client.on("error", () => undefined);
    this.bullClients.push(client);
    return client as ConnectionOptions;
  }

  private recordKeys(id: string): QueueKeys {
    return this.layout.partitions[this.layout.recordPartition(id)]!;
  }

  private batchKeys(batchId: string): QueueKeys {
    return this.layout.partitions[this.layout.batchPartition(batchId)]!;
  }

  /** Indexes of `ids` grouped by the partition of each id, in order. */
  private byPartition(ids: readonly string[]): Map<number, number[]> {
    const groups = new Map<number, number[]>();
    ids.forEach((id, i) => {
      const p = this.layout.recordPartition(id);
      const group = groups.get(p);
      if (group) group.push(i);
      else groups.set(p, [i]);
    });
    return groups;
  }

  /** The manual-fetch BullMQ worker of the anchor queue, created on first use (API-only processes never make one). */
  private worker(): Promise<Worker> {
    if (!this.anchorWorker) {
      const created = (async () => {
        const worker = new Worker(this.anchorQueue.name, null, {
          connection: this.bullConnection(true),
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
    await this.redis.srem(this.batchKeys(batchId).unscheduled, batchId);
  }

  /** Batches formed by a worker that died before adding their anchor job get one here. */
  private async sweepUnscheduled(): Promise<void> {
    if (Date.now() - this.lastOrphanSweep < this.stalledIntervalMs) return;
    this.lastOrphanSweep = Date.now();
    for (const k of this.layout.partitions) {
      for (const id of await this.redis.smembers(k.unscheduled)) {
        const state = await this.redis.hget(k.batch(id), "state");
        if (state === "open") await this.schedule(id);
        else await this.redis.srem(k.unscheduled, id);
      }
    }
  }

  /** Ends a leased batch as `doc` and moves its records, or throws LeaseLostError. */
  private async finish(batch: Batch, doc: Batch, move: RecordMove): Promise<void> {
    this.leases.assertHeld(batch.id);
    if (!(await this.scripts.finishBatch(this.batchKeys(batch.id), batch, doc, move))) throw new LeaseLostError(batch.id);
  }
}

/** One partition's counts, batch sets and the enqueue time of each lane's oldest waiting record. */
async function partitionStats(redis: RedisClient, k: QueueKeys): Promise<{ counts: Record<string, string>; open: number; parked: number; oldest: number[] }> {
  const [counts, open, parked, ...heads] = await Promise.all([
    redis.hgetall(k.counts),
    redis.scard(k.open),
    redis.scard(k.parked),
    ...LANES.map((lane) => redis.lindex(k.waiting(lane), 0)),
  ]);
  const waitingSince = await Promise.all(heads.flatMap((id) => (id ? [redis.hget(k.record(id), "enqueuedAt")] : [])));
  return { counts, open, parked, oldest: waitingSince.flatMap((at) => (at ? [Number(at)] : [])) };
}

/** A record as read: `place` ([index, treeIndex] in its Merkle batch) until its anchor is added from the batch. */
type StoredEntry = RecordEntry & { place?: [number, number] };

function parseRecord(id: Hex, h: Record<string, string> | null): StoredEntry | undefined {
  if (!h || !h.record) return undefined;
  const place = h.at ? (h.at.split(":").map(Number) as [number, number]) : undefined;
  return {
    id,
    record: JSON.parse(h.record),
    status: h.status as RecordStatus,
    enqueuedAt: Number(h.enqueuedAt),
    ...(h.batchId ? { batchId: h.batchId } : {}),
    ...(place ? { place } : {}),
    // Records anchored before anchors were kept per batch hold their own.
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
