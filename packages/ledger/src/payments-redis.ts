import { storeRedis, writeReplicated, type RedisClient, type Replication, type StoreRedis } from "@facilitator/redis";
import {
  BIG_COUNTERS, COUNTER_NAMES, countersFrom, countersJson,
  type Bucket, type Delivery, type PaymentRecord, type PaymentsStore, type RecentQuery, type WritePlan,
} from "@facilitator/payments";

export interface RedisPaymentsStoreOptions {
  /** A REDIS_URL (`redis://`, or `redis+cluster://` for a Redis Cluster; this store opens and closes its own client) or a client it borrows. */
  redis: string | RedisClient;
  /** How long a record (and a finished delivery) is kept, ms. */
  retentionMs: number;
  /**
   * Prefix of every key; default `x402:{payments}:`. Every key shares the `{payments}` hash tag, so each
   * script's keys sit in one Redis Cluster slot.
   */
  prefix?: string;
  /** Acknowledge a write only once this many replicas hold it (WAIT); default: don't wait. */
  replication?: Replication;
}

const DAY_MS = 86_400_000;
/** A record is read, planned and written again at most this many times while other writers win the race. */
const MAX_WRITE_ATTEMPTS = 16;
const SCAN_PER_QUERY = 5_000;

/** Non-negative decimal strings added digit by digit: amounts are uint256, past what Lua's numbers hold. */
const ADD_DECIMAL = `
local function add(a, b)
  local out, carry, i, j = {}, 0, #a, #b
  while i > 0 or j > 0 or carry > 0 do
    local s = carry
    if i > 0 then s = s + string.byte(a, i) - 48 end
    if j > 0 then s = s + string.byte(b, j) - 48 end
    out[#out + 1] = string.char(48 + s % 10)
    carry = math.floor(s / 10)
    i = i - 1
    j = j - 1
  end
  local r = string.reverse(table.concat(out)):gsub('^0+', '')
  if r == '' then return '0' end
  return r
end
`;

/**
 * A record, its indexes, its day total and its new deliveries in one step, if the record is still at the
 * version it was planned from.
 * KEYS: record, by-time, by-network, new outcome's index, old outcome's index, day hash, due set, then one key per delivery.
 * ARGV: expected version, record JSON, id, time, record ms to keep, oldest time kept, day hash ms to keep,
 * delivery count, then (id, JSON, due) per delivery, then (field, kind, value) per counter change.
 */
const WRITE_SCRIPT = `${ADD_DECIMAL}
local current = redis.call('GET', KEYS[1])
local version = 0
if current then version = cjson.decode(current).version end
if version ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[5])
if KEYS[5] ~= KEYS[4] then redis.call('ZREM', KEYS[5], ARGV[3]) end
for i = 2, 4 do
  redis.call('ZADD', KEYS[i], ARGV[4], ARGV[3])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', '(' .. ARGV[6])
end
local n = tonumber(ARGV[8])
for i = 1, n do
  local a = 9 + (i - 1) * 3
  if redis.call('SET', KEYS[7 + i], ARGV[a + 1], 'NX') then redis.call('ZADD', KEYS[7], ARGV[a + 2], ARGV[a]) end
end
for a = 9 + n * 3, #ARGV, 3 do
  if ARGV[a + 1] == 'b' then
    redis.call('HSET', KEYS[6], ARGV[a], add(redis.call('HGET', KEYS[6], ARGV[a]) or '0', ARGV[a + 2]))
  else
    redis.call('HINCRBY', KEYS[6], ARGV[a], ARGV[a + 2])
  end
end
redis.call('PEXPIRE', KEYS[6], ARGV[7])
return 1
`;

/** KEYS: due set, then one key per candidate. ARGV: now, lease end, then the candidates' ids. Leases those still due; returns their JSON. */
const CLAIM_SCRIPT = `
local out = {}
for i = 2, #KEYS do
  local id = ARGV[i + 1]
  local score = redis.call('ZSCORE', KEYS[1], id)
  if score and tonumber(score) <= tonumber(ARGV[1]) then
    local json = redis.call('GET', KEYS[i])
    if json then
      redis.call('ZADD', KEYS[1], ARGV[2], id)
      out[#out + 1] = json
    else
      redis.call('ZREM', KEYS[1], id)
    end
  end
end
return out
`;

/** KEYS: due set, delivery. ARGV: id, JSON, attempts before, pending?, due, ms to keep once finished. */
const FINISH_SCRIPT = `
local current = redis.call('GET', KEYS[2])
if not current or cjson.decode(current).attempts ~= tonumber(ARGV[3]) then return 0 end
if ARGV[4] == '1' then
  redis.call('SET', KEYS[2], ARGV[2])
  redis.call('ZADD', KEYS[1], ARGV[5], ARGV[1])
else
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[6])
  redis.call('ZREM', KEYS[1], ARGV[1])
end
return 1
`;

/**
 * The payments record on Redis, shared by every API process: a JSON string per record (expiring after
 * the retention), sorted sets by time (all, per network, per outcome), a hash of day totals per day, and
 * the webhook outbox (a JSON string per delivery, a sorted set of when each is due).
 */
export class RedisPaymentsStore implements PaymentsStore {
  private readonly redis: RedisClient;
  private readonly store: StoreRedis;
  private readonly prefix: string;
  private readonly retentionMs: number;
  private readonly replication?: Replication;

  constructor(opts: RedisPaymentsStoreOptions) {
    this.store = storeRedis(opts.redis);
    const client = this.store.client;
    client.defineCommand("paymentsWrite", { lua: WRITE_SCRIPT });
    client.defineCommand("paymentsClaim", { lua: CLAIM_SCRIPT });
    client.defineCommand("paymentsFinish", { numberOfKeys: 2, lua: FINISH_SCRIPT });
    this.redis = client;
    this.prefix = opts.prefix ?? "x402:{payments}:";
    this.retentionMs = opts.retentionMs;
    this.replication = opts.replication;
  }

  private key = (...parts: string[]) => this.prefix + parts.join(":");

  async write(id: string, plan: (current: PaymentRecord | undefined) => WritePlan | undefined, now: number): Promise<PaymentRecord | undefined> {
    await this.store.connected;
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
      const current = await this.get(id);
      const p = plan(current);
      if (!p) return undefined;
      const version = current?.version ?? 0;
      const record: PaymentRecord = { ...p.record, version: version + 1 };
      const dayEnd = Date.parse(`${p.bucket.day}T00:00:00Z`) + DAY_MS;
      const keys = [
        this.key("p", id), this.key("by-time"), this.key("by-network", record.network), this.key("by-outcome", record.outcome),
        this.key("by-outcome", current?.outcome ?? record.outcome), this.key("day", p.bucket.day), this.key("due"),
        ...p.deliveries.map((d) => this.key("d", d.id)),
      ];
      const args: (string | number)[] = [
        version, JSON.stringify(record), id, record.time, Math.max(1, record.time + this.retentionMs - now), now - this.retentionMs,
        Math.max(1, dayEnd + this.retentionMs - now), p.deliveries.length,
        ...p.deliveries.flatMap((d) => [d.id, JSON.stringify(d), d.nextAt]),
      ];
      const bucket = JSON.stringify([p.bucket.payTo, p.bucket.network, p.bucket.asset]);
      const delta = countersJson(p.delta);
      for (const name of COUNTER_NAMES) {
        if (delta[name] === 0 || delta[name] === "0") continue;
        args.push(`${bucket}\t${name}`, BIG_COUNTERS.includes(name) ? "b" : "i", delta[name]);
      }
      if ((await writeReplicated<number>(this.redis, this.replication, "paymentsWrite", [keys.length, ...keys, ...args], keys[0])) === 1) return record;
    }
    throw new Error(`payments record ${id}: still written by others after ${MAX_WRITE_ATTEMPTS} attempts`);
  }

  async get(id: string): Promise<PaymentRecord | undefined> {
    await this.store.connected;
    const json = await this.redis.get(this.key("p", id));
    return json === null ? undefined : (JSON.parse(json) as PaymentRecord);
  }

  async recent(q: RecentQuery): Promise<PaymentRecord[]> {
    await this.store.connected;
    const index = q.outcome ? this.key("by-outcome", q.outcome) : q.network ? this.key("by-network", q.network) : this.key("by-time");
    const max = q.before === undefined ? "+inf" : `(${q.before}`;
    const out: PaymentRecord[] = [];
    // Pages of ids; a record gone (expired) or of another network is skipped.
    for (let offset = 0; offset < SCAN_PER_QUERY && out.length < q.limit; ) {
      const count = Math.min(200, Math.max(q.limit * 2, 20));
      const ids = await this.redis.zrevrangebyscore(index, max, "-inf", "LIMIT", offset, count);
      if (!ids.length) break;
      offset += ids.length;
      const jsons = await this.redis.mget(...ids.map((id) => this.key("p", id)));
      for (const json of jsons) {
        const r = json === null ? undefined : (JSON.parse(json) as PaymentRecord);
        if (r && (!q.network || r.network === q.network) && out.length < q.limit) out.push(r);
      }
      if (ids.length < count) break;
    }
    return out;
  }

  async totals(days: readonly string[], payTo?: string): Promise<Bucket[]> {
    await this.store.connected;
    const out: Bucket[] = [];
    for (const day of days) {
      const fields = await this.redis.hgetall(this.key("day", day));
      const byBucket = new Map<string, Record<string, string>>();
      for (const [field, value] of Object.entries(fields)) {
        const tab = field.lastIndexOf("\t");
        const bucket = field.slice(0, tab);
        byBucket.set(bucket, { ...byBucket.get(bucket), [field.slice(tab + 1)]: value });
      }
      for (const [bucket, values] of byBucket) {
        const [p, network, asset] = JSON.parse(bucket) as [string, string, string];
        if (!payTo || p === payTo) out.push({ day, payTo: p, network, asset, counters: countersFrom(values) });
      }
    }
    return out.sort((a, b) => (a.day < b.day ? -1 : a.day > b.day ? 1 : 0));
  }

  async deliveries(ids: readonly string[]): Promise<Delivery[]> {
    if (!ids.length) return [];
    await this.store.connected;
    const jsons = await this.redis.mget(...ids.map((id) => this.key("d", id)));
    return jsons.filter((j): j is string => j !== null).map((j) => JSON.parse(j) as Delivery);
  }

  async claimDeliveries(now: number, leaseMs: number, limit: number): Promise<Delivery[]> {
    await this.store.connected;
    const ids = await this.redis.zrangebyscore(this.key("due"), "-inf", now, "LIMIT", 0, limit);
    if (!ids.length) return [];
    const keys = [this.key("due"), ...ids.map((id) => this.key("d", id))];
    const jsons = await writeReplicated<string[]>(this.redis, this.replication, "paymentsClaim", [keys.length, ...keys, now, now + leaseMs, ...ids], keys[0]);
    return jsons.map((j) => JSON.parse(j) as Delivery).filter((d) => d.state === "pending");
  }

  async finishDelivery(d: Delivery, now: number): Promise<boolean> {
    await this.store.connected;
    const pending = d.state === "pending" ? "1" : "0";
    const args = [this.key("due"), this.key("d", d.id), d.id, JSON.stringify(d), d.attempts - 1, pending, d.nextAt, this.retentionMs];
    return (await writeReplicated<number>(this.redis, this.replication, "paymentsFinish", args)) === 1;
  }

  async close(): Promise<void> {
    await this.store.close();
  }
}
