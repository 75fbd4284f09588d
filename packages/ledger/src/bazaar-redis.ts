import { storeRedis, writeReplicated, type RedisClient, type Replication, type StoreRedis } from "@facilitator/redis";
import type { BazaarStore, PutResult, StoredResource } from "@facilitator/bazaar";

export interface RedisBazaarStoreOptions {
  /** A REDIS_URL (`redis://`, or `redis+cluster://` for a Redis Cluster; this store opens and closes its own client) or a client it borrows. */
  redis: string | RedisClient;
  /**
   * Prefix of every key; default `x402:{bazaar}:`. Every key shares the `{bazaar}` hash tag, so the
   * put script's keys sit in one Redis Cluster slot.
   */
  prefix?: string;
  /** Acknowledge a put only once this many replicas hold it (WAIT); default: don't wait. */
  replication?: Replication;
}

/** Records swept per put at most (more wait for the next put; counts look at fresh scores anyway). */
const SWEEP_PER_PUT = 500;
/** Records read per HMGET when listing, so no one command blocks Redis for long. */
const LIST_CHUNK = 200;

/**
 * Quota checks and the write in one script, atomic across every process sharing the Redis.
 * KEYS: resources hash, expiry zset, then one zset per quota group.
 * ARGV: id, JSON, expiresAt, now, maxTotal, ms until expiresAt, then (max, reason) per group.
 * Returns `created`, `updated`, or the refusal's reason.
 */
const PUT_SCRIPT = `
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[4], 'LIMIT', 0, ${SWEEP_PER_PUT})
if #due > 0 then
  redis.call('HDEL', KEYS[1], unpack(due))
  redis.call('ZREM', KEYS[2], unpack(due))
end
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
local fresh = score and tonumber(score) > tonumber(ARGV[4])
if not fresh then
  for i = 3, #KEYS do
    local g = 7 + (i - 3) * 2
    if redis.call('ZCOUNT', KEYS[i], '(' .. ARGV[4], '+inf') >= tonumber(ARGV[g]) then return ARGV[g + 1] end
  end
  if redis.call('ZCOUNT', KEYS[2], '(' .. ARGV[4], '+inf') >= tonumber(ARGV[5]) then return 'catalog_full' end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
for i = 3, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', ARGV[4])
  redis.call('ZADD', KEYS[i], ARGV[3], ARGV[1])
  if redis.call('PTTL', KEYS[i]) < tonumber(ARGV[6]) then redis.call('PEXPIRE', KEYS[i], ARGV[6]) end
end
if fresh then return 'updated' end
return 'created'
`;

/**
 * The bazaar catalogue on Redis, shared by every API process: a hash of records, a sorted set of
 * their expiry times (what is fresh is what scores after now), and a sorted set per quota group.
 * Group sets expire by themselves once their last record would have.
 */
export class RedisBazaarStore implements BazaarStore {
  private readonly redis: RedisClient;
  private readonly replication?: Replication;
  private readonly store: StoreRedis;
  private readonly prefix: string;

  constructor(opts: RedisBazaarStoreOptions) {
    this.store = storeRedis(opts.redis);
    const client = this.store.client;
    client.defineCommand("bazaarPut", { lua: PUT_SCRIPT });
    this.redis = client;
    this.replication = opts.replication;
    this.prefix = opts.prefix ?? "x402:{bazaar}:";
  }

  async get(id: string, now: number): Promise<StoredResource | undefined> {
    await this.store.connected;
    const json = await this.redis.hget(`${this.prefix}resources`, id);
    const r = json === null ? undefined : (JSON.parse(json) as StoredResource);
    return r && r.expiresAt > now ? r : undefined;
  }

  async put(record: StoredResource, opts: { now: number; maxTotal: number }): Promise<PutResult> {
    const keys = [`${this.prefix}resources`, `${this.prefix}expiry`, ...record.groups.map((g) => `${this.prefix}group:${g.key}`)];
    const args = [record.id, JSON.stringify(record), record.expiresAt, opts.now, opts.maxTotal, Math.max(1, record.expiresAt - opts.now)];
    for (const g of record.groups) args.push(g.max, g.reason);
    await this.store.connected;
    const outcome = await writeReplicated<string>(this.redis, this.replication, "bazaarPut", [keys.length, ...keys, ...args], keys[0]);
    return outcome === "created" || outcome === "updated" ? { ok: true, created: outcome === "created" } : { ok: false, reason: outcome };
  }

  async list(now: number): Promise<StoredResource[]> {
    await this.store.connected;
    const ids = await this.redis.zrangebyscore(`${this.prefix}expiry`, `(${now}`, "+inf");
    const fresh: StoredResource[] = [];
    for (let i = 0; i < ids.length; i += LIST_CHUNK) {
      const chunk = await this.redis.hmget(`${this.prefix}resources`, ...ids.slice(i, i + LIST_CHUNK));
      for (const json of chunk) {
        const r = json === null ? undefined : (JSON.parse(json) as StoredResource);
        if (r && r.expiresAt > now) fresh.push(r);
      }
    }
    return fresh;
  }

  async close(): Promise<void> {
    await this.store.close();
  }
}
