import { randomBytes } from "node:crypto";
import type { LedgerEntry, SettlementLedger } from "@facilitator/core";
import { isCluster, storeRedis, writeReplicated, type RedisClient, type Replication, type StoreRedis } from "@facilitator/redis";
import { keepForMs, nextStored } from "./entry.ts";
import { CLUSTER_LEDGER_SHARDS, clusterReady, ledgerLayout, type LedgerLayout } from "./redis-layout.ts";

export interface RedisLedgerOptions {
  /** A REDIS_URL (`redis://`, or `redis+cluster://` for a Redis Cluster), or a client this ledger borrows (and then does not close). */
  redis: string | RedisClient;
  /** Prefix of every key this ledger writes; default `x402:ledger:`. */
  prefix?: string;
  /** Shards of the key layout (redis-layout.ts); default 1 on one Redis (its names since the start), CLUSTER_LEDGER_SHARDS on a cluster. */
  shards?: number;
  /** Acknowledge a write only once this many replicas hold it (WAIT); default: don't wait. */
  replication?: Replication;
  /**
   * Connection errors of a client this ledger created (it reconnects by itself; commands still fail
   * or retry on their own). Without a listener ioredis prints "Unhandled error event" for each.
   */
  onConnectionError?: (error: Error) => void;
  /** How long a finished entry is kept (ms, see `isFinished`); undefined or 0 keeps every entry for good. */
  retentionMs?: number;
  /** Clock in ms (tests), read for `keepUntil`. */
  now?: () => number;
}


/**
 * Compare-and-set in one Lua script, so it is atomic across every process sharing the Redis.
 * Idempotent for its own write: ioredis re-sends a command whose answer a dropped connection
 * swallowed (once, with FAIL_FAST_REDIS_OPTIONS), so a write stored by this very call (same random
 * writer token) still counts as won. The token, not the content, identifies the call: two callers may
 * well write identical entries. When the re-send fails too the call rejects, its outcome unknown, as
 * with any store error: callers never take a rejected write as won, and a later write at the same
 * expected version loses if this one was stored after all.
 * A finished entry expires after its retention (PEXPIRE); any other write makes it permanent again
 * (PERSIST), since HSET keeps a key's expiry.
 * KEYS: entry hash, unconfirmed set. ARGV: expected version, new version, JSON, state, ledger key, token, ms to keep (0: for good).
 */
const CAS_SCRIPT = `
local current = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if current ~= tonumber(ARGV[1]) then
  if current == tonumber(ARGV[2]) and redis.call('HGET', KEYS[1], 'w') == ARGV[6] then return 1 end
  return 0
end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 's', ARGV[4], 'd', ARGV[3], 'w', ARGV[6])
if ARGV[4] == 'broadcast' then redis.call('SADD', KEYS[2], ARGV[5]) else redis.call('SREM', KEYS[2], ARGV[5]) end
if tonumber(ARGV[7]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[7]) else redis.call('PERSIST', KEYS[1]) end
return 1
`;

/** KEYS: entry hash, unconfirmed set. ARGV: expected version, ledger key. */
const RELEASE_SCRIPT = `
if tonumber(redis.call('HGET', KEYS[1], 'v') or '0') ~= tonumber(ARGV[1]) then return 0 end
if redis.call('HGET', KEYS[1], 's') ~= 'claimed' then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[2])
return 1
`;


/**
 * Settlement ledger on Redis, shared by every API process. Durable before resolving only when the
 * Redis runs with `appendonly yes` and `appendfsync always` (Redis answers a write after the fsync);
 * that is the operator's configuration to set.
 */
export class RedisLedger implements SettlementLedger {
  private readonly redis: RedisClient;
  private readonly store: StoreRedis;
  private readonly keys: LedgerLayout;
  private readonly replication?: Replication;
  private readonly retentionMs: number | undefined;
  private readonly now: () => number;

  constructor(opts: RedisLedgerOptions) {
    this.store = storeRedis(opts.redis, opts.onConnectionError);
    const client = this.store.client;
    const prefix = opts.prefix ?? "x402:ledger:";
    const shards = opts.shards ?? (isCluster(client) ? CLUSTER_LEDGER_SHARDS : 1);
    if (isCluster(client) && !clusterReady(prefix, shards)) throw new Error(`RedisLedger on a Redis Cluster: one shard needs a hash tag in the prefix ("${prefix}")`);
    this.keys = ledgerLayout(prefix, shards);
    this.replication = opts.replication;
    client.defineCommand("ledgerCas", { numberOfKeys: 2, lua: CAS_SCRIPT });
    client.defineCommand("ledgerRelease", { numberOfKeys: 2, lua: RELEASE_SCRIPT });
    this.redis = client;
    this.retentionMs = opts.retentionMs;
    this.now = opts.now ?? Date.now;
  }

  async get(key: string): Promise<LedgerEntry | undefined> {
    await this.store.connected;
    const json = await this.redis.hget(this.keys.entry(key), "d");
    return json === null ? undefined : (JSON.parse(json) as LedgerEntry);
  }

  async compareAndSet(next: Omit<LedgerEntry, "version">, expectedVersion: number): Promise<LedgerEntry | undefined> {
    const stored = nextStored(next, expectedVersion);
    const json = JSON.stringify(stored);
    const keepMs = keepForMs(stored, this.retentionMs, this.now()) ?? 0;
    const token = randomBytes(12).toString("hex");
    await this.store.connected;
    const args = [this.keys.entry(stored.key), this.keys.unconfirmed(stored.key), expectedVersion, stored.version, json, stored.state, stored.key, token, keepMs];
    const won = await writeReplicated<number>(this.redis, this.replication, "ledgerCas", args);
    return won === 1 ? stored : undefined;
  }

  async release(key: string, expectedVersion: number): Promise<boolean> {
    await this.store.connected;
    return (await writeReplicated<number>(this.redis, this.replication, "ledgerRelease", [this.keys.entry(key), this.keys.unconfirmed(key), expectedVersion, key])) === 1;
  }

  async countUnconfirmed(): Promise<number> {
    await this.store.connected;
    const counts = await Promise.all(this.keys.allUnconfirmed.map((set) => this.redis.scard(set)));
    return counts.reduce((a, b) => a + b, 0);
  }

  async listUnconfirmed(limit: number, _after?: string): Promise<LedgerEntry[]> {
    await this.store.connected;
    // A random sample when there are more (shards in random order, a random few of each): repeated calls
    // reach every one, and none is starved by a stuck few.
    const keys: string[] = [];
    for (const set of shuffled(this.keys.allUnconfirmed)) {
      if (keys.length >= limit) break;
      keys.push(...(await this.redis.srandmember(set, limit - keys.length)));
    }
    const entries = await Promise.all(keys.map((k) => this.get(k)));
    return entries.filter((e): e is LedgerEntry => e?.state === "broadcast");
  }

  async close(): Promise<void> {
    await this.store.close();
  }
}

function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
