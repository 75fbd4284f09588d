/**
 * One way to open Redis for every store: `openRedis(REDIS_URL, options)` gives an ioredis `Redis` for
 * one server or an ioredis `Cluster` for a `redis+cluster://` URL (url.ts), with the same options
 * applied to every node of a cluster.
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from "ioredis";
import { parseRedisUrl } from "./url.ts";

/** What the stores hold: the commands they use are the same on both. */
export type RedisClient = Redis | Cluster;

export function isCluster(client: RedisClient): client is Cluster {
  return (client as Cluster).isCluster === true;
}

/** True when `url` names a cluster (redis+cluster:// or rediss+cluster://); throws if it is not a Redis URL. */
export function isClusterUrl(url: string): boolean {
  return parseRedisUrl(url).kind === "cluster";
}

/**
 * A client for `url`. `options` are per connection (`lazyConnect` and `enableOfflineQueue` apply to
 * the cluster as a whole); `cluster` adds Cluster-only options.
 */
export function openRedis(url: string, options: RedisOptions = {}, cluster: Omit<ClusterOptions, "redisOptions"> = {}): RedisClient {
  const target = parseRedisUrl(url);
  if (target.kind === "single") return new Redis(target.url, options);
  const { lazyConnect, enableOfflineQueue, host: _h, port: _p, retryStrategy: _r, ...perNode } = options;
  return new Cluster(target.nodes, {
    ...(lazyConnect !== undefined ? { lazyConnect } : {}),
    ...(enableOfflineQueue !== undefined ? { enableOfflineQueue } : {}),
    ...cluster,
    redisOptions: {
      ...perNode,
      ...(target.username ? { username: target.username } : {}),
      ...(target.password ? { password: target.password } : {}),
      ...(target.tls ? { tls: {} } : {}),
    },
  });
}

/**
 * A caller waiting on a store (a /settle, a /verify, the inference door) hears of a Redis outage at
 * once, not after ioredis's default 20 reconnect attempts (about 10 s): a command issued while
 * disconnected fails without being sent, and one in flight when the connection drops is re-sent after
 * the first reconnect, or fails if that attempt fails too.
 */
export const FAIL_FAST_REDIS_OPTIONS = { maxRetriesPerRequest: 1, enableOfflineQueue: false } as const satisfies RedisOptions;

/** A store's Redis client, and what the store owes it. */
export interface StoreRedis {
  client: RedisClient;
  /**
   * Settles with the first connection attempt of a client the store opened: without an offline queue
   * a command sent before it is connected would fail, so the first commands wait for it; later ones
   * fail at once while Redis is away. At once for a client the caller gave.
   */
  connected: Promise<void>;
  /** Quits a client the store opened; leaves the caller's alone. */
  close(): Promise<void>;
}

/**
 * The client of a store given a REDIS_URL (its own, fail-fast, errors to `onError`: it reconnects by
 * itself) or a client to share (the caller's, configured and closed by the caller).
 */
export function storeRedis(redis: string | RedisClient, onError: (e: Error) => void = () => undefined): StoreRedis {
  if (typeof redis !== "string") return { client: redis, connected: Promise.resolve(), close: async () => undefined };
  const client = openRedis(redis, { ...FAIL_FAST_REDIS_OPTIONS, lazyConnect: true });
  client.on("error", onError);
  return {
    client,
    // A failed first attempt settles this too; the client goes on reconnecting by itself.
    connected: client.connect().then(
      () => undefined,
      () => undefined,
    ),
    close: () => client.quit().then(
      () => undefined,
      () => client.disconnect(),
    ),
  };
}
