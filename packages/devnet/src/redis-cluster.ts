/**
 * A private Redis Cluster for tests and benchmarks: `primaries` redis-servers with cluster mode on,
 * each with `replicasPerPrimary` replicas, joined by `redis-cli --cluster create` on free ports in a
 * temporary directory. Resolves once every node reports `cluster_state:ok` and every replica is in
 * sync with its primary. Failover comes fast: nodes time out after `nodeTimeoutMs` (default 1 s).
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePortPair } from "./ports.ts";
import { startRedis, type RedisServer } from "./redis.ts";
import { waitFor } from "./wait.ts";

const run = promisify(execFile);
const BUS_OFFSET = 10_000;

export interface RedisClusterOptions {
  primaries?: number;
  replicasPerPrimary?: number;
  /** Append-only files with `appendfsync always` on every node (default off: replicas are the copies). */
  appendOnly?: boolean;
  nodeTimeoutMs?: number;
}

export interface ClusterShard {
  primary: number;
  replicas: number[];
}

export interface RedisCluster {
  /** `redis+cluster://127.0.0.1:<port>,...` naming every node as a seed. */
  url: string;
  nodes: Map<number, RedisServer>;
  /** redis-cli against the node on `port`; resolves with its output. */
  cli(port: number, ...args: string[]): Promise<string>;
  /** Each primary with its replicas, as the live nodes see them now. */
  shards(): Promise<ClusterShard[]>;
  /** The primary serving `key` now. */
  primaryOf(key: string): Promise<number>;
  /**
   * SIGKILLs the primary on `port` (a crash: nothing flushed, no handover) and resolves with the port of
   * the replica promoted in its place, once every live node reports the cluster healthy again.
   */
  killPrimary(port: number): Promise<number>;
  /** Starts a killed node again; it rejoins as a replica. Resolves once the cluster is healthy. */
  restart(port: number): Promise<void>;
  /** Every live node reports cluster_state:ok, and every replica's link to its primary is up. */
  healthy(): Promise<void>;
  /** SIGKILLs every node: the whole cluster lost at once. */
  killAll(): void;
  /** Starts every killed node again (on its append-only file, with `appendOnly`); resolves once healthy. */
  restartAll(): Promise<void>;
  stop(): Promise<void>;
}

export async function startRedisCluster(opts: RedisClusterOptions = {}): Promise<RedisCluster> {
  const primaries = opts.primaries ?? 3;
  const replicas = opts.replicasPerPrimary ?? 1;
  const nodeTimeoutMs = opts.nodeTimeoutMs ?? 1000;
  const dir = mkdtempSync(join(tmpdir(), "redis-cluster-"));
  const nodes = new Map<number, RedisServer>();
  const down = new Set<number>();
  // A bound on each call: a node busy loading or syncing must not hang the caller's polling.
  const cli = async (port: number, ...args: string[]) => (await run("redis-cli", ["-h", "127.0.0.1", "-p", String(port), ...args], { timeout: 10_000 })).stdout;
  const live = () => [...nodes.keys()].filter((p) => !down.has(p));

  const healthy = async () => {
    await waitFor(
      async () => {
        for (const port of live()) {
          if (!(await cli(port, "cluster", "info")).includes("cluster_state:ok")) return false;
          const info = await cli(port, "info", "replication");
          if (info.includes("role:slave") && !info.includes("master_link_status:up")) return false;
        }
        const view = await shards();
        return view.length === primaries && view.every((s) => s.replicas.length === replicas);
      },
      "the Redis Cluster to be healthy",
      60_000,
      100,
    );
  };

  /** From CLUSTER NODES of a live node: primaries (with slots) and the live replicas following each. */
  const shards = async (): Promise<ClusterShard[]> => {
    const lines = (await cli(live()[0]!, "cluster", "nodes")).trim().split("\n").map((l) => l.split(" "));
    const portOf = (addr: string) => Number(addr.split("@")[0]!.split(":").pop());
    const alive = (flags: string) => !/fail|handshake|noaddr/.test(flags);
    const masters = lines.filter((f) => f[2]!.includes("master") && alive(f[2]!) && f.length > 8);
    return masters.map((m) => ({
      primary: portOf(m[1]!),
      replicas: lines.filter((f) => f[3] === m[0] && alive(f[2]!)).map((f) => portOf(f[1]!)),
    }));
  };

  try {
    const count = primaries * (1 + replicas);
    for (let i = 0; i < count; i++) {
      const port = await freePortPair(BUS_OFFSET);
      const nodeDir = join(dir, String(port));
      mkdirSync(nodeDir);
      const args = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", String(nodeTimeoutMs)];
      // A replica stands for election however long it has been cut off: in a test, data age is not the point.
      args.push("--cluster-replica-validity-factor", "0");
      nodes.set(port, await startRedis({ port, dir: nodeDir, appendOnly: opts.appendOnly, args }));
    }
    const addresses = [...nodes.keys()].map((p) => `127.0.0.1:${p}`);
    await run("redis-cli", ["--cluster", "create", ...addresses, "--cluster-replicas", String(replicas), "--cluster-yes"]);
    await healthy();
  } catch (e) {
    await Promise.all([...nodes.values()].map((n) => n.stop()));
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }

  return {
    url: `redis+cluster://${[...nodes.keys()].map((p) => `127.0.0.1:${p}`).join(",")}`,
    nodes,
    cli,
    shards,
    healthy,
    async primaryOf(key) {
      const slot = Number((await cli(live()[0]!, "cluster", "keyslot", key)).trim());
      for (const line of (await cli(live()[0]!, "cluster", "nodes")).trim().split("\n")) {
        const f = line.split(" ");
        if (!f[2]!.includes("master") || /fail/.test(f[2]!)) continue;
        for (const range of f.slice(8).filter((r) => !r.startsWith("["))) {
          const [from, to = from] = range.split("-").map(Number);
          if (slot >= from! && slot <= to!) return Number(f[1]!.split("@")[0]!.split(":").pop());
        }
      }
      throw new Error(`no live primary serves slot ${slot}`);
    },
    async killPrimary(port) {
      const before = (await shards()).find((s) => s.primary === port);
      if (!before) throw new Error(`${port} is not a primary`);
      nodes.get(port)!.kill();
      down.add(port);
      const promoted = await waitFor(
        async () => (await shards()).find((s) => before.replicas.includes(s.primary))?.primary,
        `a replica of ${port} to be promoted`,
        60_000,
        100,
      );
      await waitFor(async () => {
        for (const p of live()) if (!(await cli(p, "cluster", "info")).includes("cluster_state:ok")) return false;
        return true;
      }, "the cluster to serve every slot again", 60_000, 100);
      return promoted;
    },
    async restart(port) {
      await nodes.get(port)!.restart();
      down.delete(port);
      await healthy();
    },
    killAll() {
      for (const [port, node] of nodes) {
        node.kill();
        down.add(port);
      }
    },
    async restartAll() {
      await Promise.all([...down].map((port) => nodes.get(port)!.restart()));
      down.clear();
      await healthy();
    },
    async stop() {
      await Promise.all([...nodes.values()].map((n) => n.stop()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
