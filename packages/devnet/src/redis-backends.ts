/**
 * The Redis deployments the Redis stores' contract suites run on: one append-only redis-server, and a
 * Redis Cluster of 3 primaries with a replica each where every write waits for its replica (WAIT 1).
 * Each starts on first use and is stopped by `stop`. "Restart" means what losing the server means for
 * each: the single server SIGKILLed and started on its append-only file; on the cluster, the primary
 * serving `key` SIGKILLed and its replica promoted (the old primary then rejoins as a replica).
 */
import { startRedisCluster, type RedisCluster } from "./redis-cluster.ts";
import { startRedis, type RedisServer } from "./redis.ts";

export interface RedisBackend {
  label: string;
  /** The REDIS_URL, starting the deployment on first use. */
  url(): Promise<string>;
  /** What the stores should WAIT for (@facilitator/redis's Replication). */
  replication?: { replicas: number; timeoutMs: number };
  /** Loses the server holding `key` (see above); resolves once it serves again. */
  crash(key: string): Promise<void>;
  /** Loses every server in turn (on the cluster, each primary once): for stores whose keys spread over the cluster. */
  crashEach(): Promise<void>;
  stop(): Promise<void>;
}

export function singleRedis(): RedisBackend {
  let server: RedisServer | undefined;
  return {
    label: "append-only redis-server",
    async url() {
      return (server ??= await startRedis({ appendOnly: true })).url;
    },
    async crash() {
      server!.kill();
      await server!.restart();
    },
    async crashEach() {
      await this.crash("");
    },
    async stop() {
      await server?.stop();
    },
  };
}

export function redisCluster(): RedisBackend {
  let cluster: RedisCluster | undefined;
  return {
    label: "Redis Cluster, 3 primaries with a replica each, WAIT 1",
    replication: { replicas: 1, timeoutMs: 5_000 },
    async url() {
      return (cluster ??= await startRedisCluster()).url;
    },
    async crash(key) {
      const primary = await cluster!.primaryOf(key);
      await cluster!.killPrimary(primary);
      await cluster!.restart(primary);
    },
    async crashEach() {
      for (const { primary } of await cluster!.shards()) {
        await cluster!.killPrimary(primary);
        await cluster!.restart(primary); // back as a replica, so the next primary has one again
      }
    },
    async stop() {
      await cluster?.stop();
    },
  };
}

export const redisBackends = (): RedisBackend[] => [singleRedis(), redisCluster()];
