/**
 * Writes acknowledged only once replicas have them. Redis replicates asynchronously: a primary that
 * dies right after answering may take its last writes with it when a replica is promoted. WAIT blocks
 * until `replicas` replicas of the connection it is sent on have acknowledged everything written on it
 * so far, so a write followed by a successful WAIT on the same connection survives the loss of its
 * primary (with one replica per primary, the replica promoted is the one that acknowledged).
 *
 * The write goes first, as any command (on a cluster, ioredis follows MOVED and ASK and retries through
 * a failover), then WAIT on the connection of the node that now serves the write's slot: the one that
 * ran it. (In one pipeline with the write, WAIT would stop ioredis from following a redirection.)
 */
import type { Cluster } from "ioredis";
import { isCluster, type RedisClient } from "./client.ts";
import { keySlot } from "./slots.ts";

export interface Replication {
  /** How many replicas must hold a write before it counts as done (0: don't wait). */
  replicas: number;
  /** How long to wait for them; past it the write is reported as failed (its outcome unknown). */
  timeoutMs: number;
}

export class ReplicationError extends Error {
  constructor(acknowledged: number, wanted: number) {
    super(`the write reached ${acknowledged} of the ${wanted} replicas it waits for`);
    this.name = "ReplicationError";
  }
}

type Callable = Record<string, (...args: unknown[]) => Promise<unknown>>;

/**
 * Calls `command` (a built-in or a `defineCommand` script) with `args` and, with `replication`, waits
 * for the replicas. `key` is one of the keys written (all in one slot): by default the first argument,
 * as for a script with a fixed number of keys. A rejection means the outcome is unknown, as with any
 * failed write: the write may have run.
 */
export async function writeReplicated<T>(
  client: RedisClient,
  replication: Replication | undefined,
  command: string,
  args: readonly (string | number | Buffer)[],
  key = String(args[0]),
): Promise<T> {
  const result = (await (client as unknown as Callable)[command]!(...args)) as T;
  if (!replication?.replicas) return result;
  const node = isCluster(client) ? nodeServing(client, key) : client;
  const acknowledged = Number(await node.wait(replication.replicas, replication.timeoutMs));
  if (acknowledged < replication.replicas) throw new ReplicationError(acknowledged, replication.replicas);
  return result;
}

/** The primary's client that the cluster sends `key`'s commands to now. */
function nodeServing(cluster: Cluster, key: string) {
  const address = cluster.slots[keySlot(key)]?.[0];
  const node = cluster.nodes("master").find((n) => `${n.options.host}:${n.options.port}` === address);
  if (!node) throw new Error(`no primary known for the slot of ${key}; the write's replication is unknown`);
  return node;
}
