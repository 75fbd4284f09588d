import { randomBytes } from "node:crypto";
import { Redis, type RedisOptions } from "ioredis";
import type { LedgerEntry, SettlementLedger } from "@facilitator/core";
import { keepForMs, nextStored } from "./entry.ts";

export interface RedisLedgerOptions {
  /** A `redis://` URL, or a client this ledger borrows (and then does not close). */
  redis: string | Redis;
  /** Prefix of every key this ledger writes; default `x402:ledger:`. */
  prefix?: string;
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
 * A caller waiting on the ledger (a /settle, a /verify) hears of a Redis outage at once, not after
 * ioredis's default 20 reconnect attempts (about 10 s): a command issued while disconnected fails
 * without being sent, and one in flight when the connection drops is re-sent after the first
 * reconnect, or fails if that attempt fails too.
 */
export const FAIL_FAST_REDIS_OPTIONS = { maxRetriesPerRequest: 1, enableOfflineQueue: false } as const satisfies RedisOptions;

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

type LedgerCommands = {
  ledgerCas(entryKey: string, setKey: string, expected: number, version: number, json: string, state: string, key: string, token: string, keepMs: number): Promise<number>;
  ledgerRelease(entryKey: string, setKey: string, expected: number, key: string): Promise<number>;
};

/**
 * Settlement ledger on Redis, shared by every API process. Durable before resolving only when the
 * Redis runs with `appendonly yes` and `appendfsync always` (Redis answers a write after the fsync);
 * that is the operator's configuration to set.
 */
export class RedisLedger implements SettlementLedger {
  private readonly redis: Redis & LedgerCommands;
  private readonly ownsClient: boolean;
  private readonly prefix: string;
  private readonly retentionMs: number | undefined;
  private readonly now: () => number;
  /**
   * Settles with the first connection attempt of a client this ledger created. Without an offline
   * queue a command sent before the client is connected would fail, so the first commands wait for
   * it; later ones fail at once while Redis is away.
   */
  private readonly firstConnection: Promise<void>;

  constructor(opts: RedisLedgerOptions) {
    this.ownsClient = typeof opts.redis === "string";
    const client = typeof opts.redis === "string" ? new Redis(opts.redis, { ...FAIL_FAST_REDIS_OPTIONS, lazyConnect: true }) : opts.redis;
    if (this.ownsClient) client.on("error", opts.onConnectionError ?? (() => undefined));
    client.defineCommand("ledgerCas", { numberOfKeys: 2, lua: CAS_SCRIPT });
    client.defineCommand("ledgerRelease", { numberOfKeys: 2, lua: RELEASE_SCRIPT });
    this.redis = client as Redis & LedgerCommands;
    // A failed first attempt rejects here; the client goes on reconnecting by itself.
    this.firstConnection = this.ownsClient ? client.connect().catch(() => undefined) : Promise.resolve();
    this.prefix = opts.prefix ?? "x402:ledger:";
    this.retentionMs = opts.retentionMs;
    this.now = opts.now ?? Date.now;
  }

  private entryKey(key: string): string {
    return `${this.prefix}entry:${key}`;
  }

  private get setKey(): string {
    return `${this.prefix}unconfirmed`;
  }

  async get(key: string): Promise<LedgerEntry | undefined> {
    await this.firstConnection;
    const json = await this.redis.hget(this.entryKey(key), "d");
    return json === null ? undefined : (JSON.parse(json) as LedgerEntry);
  }

  async compareAndSet(next: Omit<LedgerEntry, "version">, expectedVersion: number): Promise<LedgerEntry | undefined> {
    const stored = nextStored(next, expectedVersion);
    const json = JSON.stringify(stored);
    const keepMs = keepForMs(stored, this.retentionMs, this.now()) ?? 0;
    await this.firstConnection;
    const won = await this.redis.ledgerCas(
      this.entryKey(stored.key), this.setKey, expectedVersion, stored.version, json, stored.state, stored.key, randomBytes(12).toString("hex"), keepMs,
    );
    return won === 1 ? stored : undefined;
  }

  async release(key: string, expectedVersion: number): Promise<boolean> {
    await this.firstConnection;
    return (await this.redis.ledgerRelease(this.entryKey(key), this.setKey, expectedVersion, key)) === 1;
  }

  async countUnconfirmed(): Promise<number> {
    await this.firstConnection;
    return this.redis.scard(this.setKey);
  }

  async listUnconfirmed(limit: number, _after?: string): Promise<LedgerEntry[]> {
    await this.firstConnection;
    // A random sample when there are more: repeated calls reach every one, and none is starved by a stuck few.
    const keys = await this.redis.srandmember(this.setKey, limit);
    const entries = await Promise.all(keys.map((k) => this.get(k)));
    return entries.filter((e): e is LedgerEntry => e?.state === "broadcast");
  }

  async close(): Promise<void> {
    if (this.ownsClient) await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
