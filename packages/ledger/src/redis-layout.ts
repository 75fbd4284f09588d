/**
 * Where RedisLedger keeps its keys. Each entry is a hash; the ids of entries in `broadcast` state are
 * also in an "unconfirmed" set, written by the same script as the entry, so the two must share a
 * Redis Cluster slot. One set for every entry would put the whole ledger in one slot (one primary);
 * instead the ledger is cut into shards, each entry in the shard its key hashes to, each shard's entries
 * and set under one hash tag. The price is paid by the rare whole-ledger reads: counting and listing
 * unconfirmed entries ask every shard.
 *
 * One shard is the layout a single Redis has always used (`<prefix>entry:<key>`, `<prefix>unconfirmed`),
 * so existing data keeps its names there.
 */
import { crc16, hashedPart, spreadTags } from "@facilitator/redis";

/** Shards of a ledger on a Redis Cluster: spread over up to 16 primaries, and 16 SCARDs per count. */
export const CLUSTER_LEDGER_SHARDS = 16;

export interface LedgerLayout {
  entry(key: string): string;
  /** The unconfirmed set of `key`'s shard: the same slot as its entry. */
  unconfirmed(key: string): string;
  /** The unconfirmed set of every shard. */
  allUnconfirmed: readonly string[];
}

export function ledgerLayout(prefix: string, shards: number): LedgerLayout {
  if (!(Number.isInteger(shards) && shards >= 1)) throw new Error(`ledger shards must be a whole number >= 1, got ${shards}`);
  if (shards === 1) return { entry: (key) => `${prefix}entry:${key}`, unconfirmed: () => `${prefix}unconfirmed`, allUnconfirmed: [`${prefix}unconfirmed`] };
  const bases = spreadTags("ledger", shards).map((tag) => `${prefix}{${tag}}:`);
  const baseOf = (key: string) => bases[crc16(key) % shards]!;
  return {
    entry: (key) => `${baseOf(key)}entry:${key}`,
    unconfirmed: (key) => `${baseOf(key)}unconfirmed`,
    allUnconfirmed: bases.map((b) => `${b}unconfirmed`),
  };
}

/** On a cluster one shard is only possible when the prefix itself carries a hash tag. */
export function clusterReady(prefix: string, shards: number): boolean {
  return shards > 1 || hashedPart(prefix) !== prefix;
}
