/**
 * The queue's Lua scripts (./commands, one file each, named `name-<number of keys>.lua` as BullMQ names
 * its own), read once when this module loads and registered per connection with ioredis defineCommand
 * (EVALSHA, falling back to EVAL). Each method puts its arguments in the KEYS/ARGV order that its
 * script's header lists; the order is the contract between the two files. Every key a script touches,
 * named or built from a prefix, is in the one partition (`QueueKeys`) it is given: one cluster slot.
 * With `replication`, each write is acknowledged only once that many replicas hold it (WAIT).
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Hex } from "viem";
import { writeReplicated, type RedisClient, type Replication } from "@facilitator/redis";
import { recordLane, RECORD_STATUSES, type Lane, type RecordStatus } from "../records.ts";
import type { Batch, BatchLimits, EnqueueItem } from "../queue.ts";
import type { QueueKeys } from "./keys.ts";

/** How long an intake call's answer is kept for a resend of the same call (one byte per record). */
const ANSWER_TTL_S = 600;
const STATUS_BY_LETTER = Object.fromEntries(RECORD_STATUSES.map((s) => [s[0], s])) as Record<string, RecordStatus>;

interface Script {
  numberOfKeys: number;
  lua: string;
}

/** Reads `commands/<file>`; the key count in its name must match the KEYS its header lists. */
function load(file: string): Script {
  const numberOfKeys = Number(/-(\d+)\.lua$/.exec(file)?.[1]);
  const lua = readFileSync(new URL(`./commands/${file}`, import.meta.url), "utf8");
  const listed = new Set(lua.split("]]")[0]!.match(/KEYS\[\d+\]/g)).size;
  if (!(numberOfKeys >= 0) || listed !== numberOfKeys) throw new Error(`${file}: header lists ${listed} KEYS, its name says ${numberOfKeys}`);
  return { numberOfKeys, lua };
}

const SCRIPTS = {
  infEnqueue: load("enqueue-5.lua"),
  infFormBatch: load("formBatch-5.lua"),
  infSaveBatch: load("saveBatch-1.lua"),
  infFinishBatch: load("finishBatch-5.lua"),
  infReopenBatch: load("reopenBatch-4.lua"),
  infRecords: load("records-1.lua"),
};

type Arg = string | number | Buffer;

/** What forming a batch found: a batch formed with these records, a wait, or nothing to do. */
export type FormReply = { recordIds: Hex[] } | { retryInMs: number } | Record<string, never>;

/** How `finishBatch` moves the batch's records. */
export interface RecordMove {
  to: RecordStatus;
  /** Only records in this status move (default: any status but `to`). */
  from?: RecordStatus;
  /** The record field written: with `value` for every record, or with `values[i]` for the batch's i-th (neither: no field). */
  field: "at" | "error";
  value?: string;
  /** Per record, in the batch's order; no commas. */
  values?: string[];
  /** Kept with the batch: what its records share (`anchor`, JSON) and its tree's nodes. */
  anchor?: string;
  nodes?: Uint8Array;
}

/** A batch as its hash's doc field keeps it: the record ids live in the ids field, written once when it is formed. */
const docJson = (batch: Batch): string => JSON.stringify({ ...batch, recordIds: [] });

export class QueueScripts {
  constructor(
    private readonly redis: RedisClient,
    private readonly replication: Replication | undefined,
  ) {
    for (const [name, script] of Object.entries(SCRIPTS)) redis.defineCommand(name, script);
  }

  private run<T>(script: keyof typeof SCRIPTS, ...keysThenArgv: Arg[]): Promise<T> {
    return writeReplicated<T>(this.redis, this.replication, script, keysThenArgv);
  }

  /** Per item, the status it already had, or undefined when this call stored it. */
  async enqueue(k: QueueKeys, items: readonly EnqueueItem[], now: number): Promise<(RecordStatus | undefined)[]> {
    const argv: Arg[] = [k.recordPrefix, now, ANSWER_TTL_S];
    const keyIndex: Record<Lane, number> = { batch: 2, single: 3, gateway: 4 };
    for (const { id, record } of items) argv.push(id, keyIndex[recordLane(record)], JSON.stringify(record));
    const letters = await this.run<string>("infEnqueue", k.counts, k.waiting("batch"), k.waiting("single"), k.waiting("gateway"), k.answer(randomUUID()), ...argv);
    return items.map((_, i) => (letters[i] === "n" ? undefined : STATUS_BY_LETTER[letters[i]!]!));
  }

  /** Forms `skeleton` (a batch with no records yet) from the oldest waiting records of `lane`, if it is time. */
  async formBatch(k: QueueKeys, lane: Lane, limits: BatchLimits, now: number, skeleton: Batch): Promise<FormReply> {
    const [outcome, ...rest] = await this.run<Arg[]>(
      "infFormBatch",
      k.waiting(lane),
      k.batch(skeleton.id),
      k.counts,
      k.open,
      k.unscheduled,
      k.recordPrefix,
      limits.maxSize,
      limits.maxWaitMs,
      now,
      skeleton.id,
      docJson(skeleton),
    );
    if (outcome === "wait") return { retryInMs: Number(rest[0]) };
    if (outcome === "formed") return { recordIds: rest as Hex[] };
    return {};
  }

  /** Writes `next` over the open batch if its stored version is still `version`; false if not. */
  async saveBatch(k: QueueKeys, version: number, next: Batch): Promise<boolean> {
    return (await this.run<number>("infSaveBatch", k.batch(next.id), version, docJson(next), "open")) === 1;
  }

  /** Ends the open batch `batch` as `doc` (anchored or parked) and moves its records, if `batch` is current. */
  async finishBatch(k: QueueKeys, batch: Batch, doc: Batch, move: RecordMove): Promise<boolean> {
    const nodes = move.nodes ? Buffer.from(move.nodes.buffer, move.nodes.byteOffset, move.nodes.byteLength) : "";
    const ok = await this.run<number>(
      "infFinishBatch",
      k.batch(batch.id),
      k.counts,
      k.open,
      k.parked,
      k.batchNodes(batch.id),
      batch.version,
      docJson(doc),
      doc.state,
      batch.id,
      k.recordPrefix,
      move.to,
      move.from ?? "",
      move.field,
      move.anchor ?? "",
      nodes,
      move.value ?? "",
      move.values?.join(",") ?? "",
    );
    return ok === 1;
  }

  /** Re-opens the parked batch as `doc`, its failed records batched again; false if it was not parked. */
  async reopenBatch(k: QueueKeys, batch: Batch, doc: Batch): Promise<boolean> {
    const ok = await this.run<number>("infReopenBatch", k.batch(batch.id), k.counts, k.open, k.parked, docJson(doc), batch.id, k.recordPrefix);
    return ok === 1;
  }

  /** The stored JSON of each record, in order (null: not stored), in one reply: `JSON.parse` of the array. Reads only. */
  async records(k: QueueKeys, ids: readonly string[]): Promise<string> {
    if (ids.length === 0) return "[]";
    const body = await (this.redis as unknown as { infRecords(...args: Arg[]): Promise<string> }).infRecords(k.counts, k.recordPrefix, ...ids);
    return `[${body}]`;
  }
}
