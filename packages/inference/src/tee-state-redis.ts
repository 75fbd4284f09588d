/**
 * The registrar's nonces and the heartbeat relay's per-TEE slots on Redis, shared by every API
 * process: a nonce issued by one is redeemed by another, once, and one heartbeat per TEE per interval
 * is relayed whichever process receives it. Each decision is one Lua script (atomic) on one key; every
 * key carries the `{tees}` hash tag, so they sit in one Redis Cluster slot. Keys expire by themselves.
 */
import type { Hex } from "viem";
import { storeRedis, type RedisClient, type StoreRedis } from "@facilitator/redis";
import type { NonceRecord, NonceStore } from "@facilitator/tee";
import type { HeartbeatSlots } from "./heartbeat.ts";

export interface RedisTeeStateOptions {
  /** A REDIS_URL (`redis://`, or `redis+cluster://` for a Redis Cluster; this store opens and closes its own client) or a client it borrows. */
  redis: string | RedisClient;
  /** Prefix of every key; default `x402:{tees}:`. */
  prefix?: string;
}

/**
 * The rule of `redeemable` (@facilitator/tee): unused and not expired at ARGV[1], then marked used; a
 * record past its keep time is forgotten, as in the other stores, whatever Redis's own expiry says.
 * KEYS: the nonce. Value "<expiresAt>:<0|1>:<keepUntil>". Returns the value as it was, or nil.
 */
const REDEEM_SCRIPT = `
local v = redis.call('GET', KEYS[1])
if not v then return nil end
local expiresAt, used, keepUntil = string.match(v, '^(%d+):(%d):(%d+)$')
local now = tonumber(ARGV[1])
if not expiresAt or now > tonumber(keepUntil) then return nil end
if used == '0' and now <= tonumber(expiresAt) then redis.call('SET', KEYS[1], expiresAt .. ':1:' .. keepUntil, 'KEEPTTL') end
return v
`;

/**
 * The rule of `slotHeld` (heartbeat.ts): held when taken less than ARGV[2] ms before ARGV[1].
 * KEYS: the TEE's slot. Returns when it was taken while held, else takes it and returns nil.
 */
const TAKE_SCRIPT = `
local last = redis.call('GET', KEYS[1])
if last and tonumber(ARGV[1]) - tonumber(last) < tonumber(ARGV[2]) then return last end
redis.call('SET', KEYS[1], ARGV[1], 'PX', math.max(1, tonumber(ARGV[2])))
return nil
`;

type TeeCommands = {
  teeRedeemNonce(key: string, now: number): Promise<string | null>;
  teeTakeSlot(key: string, now: number, intervalMs: number): Promise<string | null>;
};

export class RedisTeeState implements NonceStore, HeartbeatSlots {
  private readonly redis: RedisClient & TeeCommands;
  private readonly store: StoreRedis;
  private readonly prefix: string;

  constructor(opts: RedisTeeStateOptions) {
    this.store = storeRedis(opts.redis);
    const client = this.store.client;
    client.defineCommand("teeRedeemNonce", { numberOfKeys: 1, lua: REDEEM_SCRIPT });
    client.defineCommand("teeTakeSlot", { numberOfKeys: 1, lua: TAKE_SCRIPT });
    this.redis = client as RedisClient & TeeCommands;
    this.prefix = opts.prefix ?? "x402:{tees}:";
  }

  async add(nonce: Hex, record: NonceRecord, now: number, keepUntil: number): Promise<void> {
    await this.store.connected;
    const value = `${record.expiresAt}:${record.used ? 1 : 0}:${keepUntil}`;
    await this.redis.set(`${this.prefix}nonce:${nonce}`, value, "PX", Math.max(1, keepUntil - now));
  }

  async redeem(nonce: Hex, now: number): Promise<NonceRecord | undefined> {
    await this.store.connected;
    const before = await this.redis.teeRedeemNonce(`${this.prefix}nonce:${nonce}`, now);
    const m = before?.match(/^(\d+):([01]):\d+$/);
    return m ? { expiresAt: Number(m[1]), used: m[2] === "1" } : undefined;
  }

  async take(teeId: Hex, now: number, intervalMs: number): Promise<number | undefined> {
    await this.store.connected;
    const last = await this.redis.teeTakeSlot(`${this.prefix}heartbeat:${teeId.toLowerCase()}`, now, intervalMs);
    return last === null ? undefined : Number(last);
  }

  async close(): Promise<void> {
    await this.store.close();
  }
}
