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
