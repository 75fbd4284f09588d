/**
 * The facilitator as operators run it: separate OS processes (`tsx packages/server/src/cli.ts`, and its
 * `worker` command) configured by environment only, on a world of their own (`startProcessWorld`).
 * The fault injectors the process suites use are in fault-proxy.ts; their HTTP calls in http.ts.
 *
 * Each facilitator runs in its own process group (tsx starts the real node process as its child), so
 * `kill9` takes the whole process down at once, like an OOM kill or a lost machine would.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Address, Hex } from "viem";
import {
  freePort,
  repoRoot,
  startEvmWorld,
  startRedis,
  startRedisCluster,
  startWalrusService,
  type EvmWorld,
  type EvmWorldNetwork,
  type RedisCluster,
  type RedisServer,
  type WalrusService,
  waitFor,
} from "@facilitator/devnet";
import { deployRelay } from "./relay.ts";

const tsx = join(repoRoot, "node_modules", ".bin", "tsx");
const cli = join(repoRoot, "packages", "server", "src", "cli.ts");

/** Keep the tail of a process's output for failure messages, not all of it. */
const OUTPUT_LIMIT = 256 * 1024;

export interface FacilitatorProcess {
  name: string;
  /** `http://127.0.0.1:<port>` for API processes; undefined for worker-only ones. */
  url?: string;
  pid: number;
  child: ChildProcess;
  /** Its stdout and stderr so far (the last 256 KiB). */
  output(): string;
  /** Resolves with the exit code (null when killed by a signal) once the process is gone. */
  exited: Promise<number | null>;
  running(): boolean;
  /** SIGKILL to the whole process group: no shutdown step runs. Resolves once it is gone. */
  kill9(): Promise<void>;
  /** SIGTERM (graceful shutdown), then SIGKILL if it is still there after `graceMs`. Resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
}

export interface SpawnOptions {
  name: string;
  /** The production configuration (see `productionEnv`). PATH and HOME are added. */
  env: Record<string, string>;
  /** `api` listens (PORT is chosen here) and is ready once /health answers; `worker` runs `cli.ts worker`. */
  role: "api" | "worker";
  readyTimeoutMs?: number;
  /** Flags for node itself, passed through tsx (e.g. `--cpu-prof`, which NODE_OPTIONS may not carry). */
  nodeArgs?: string[];
}

export async function spawnFacilitator(opts: SpawnOptions): Promise<FacilitatorProcess> {
  const port = opts.role === "api" ? await freePort() : undefined;
  const env: Record<string, string> = { PATH: process.env.PATH!, HOME: process.env.HOME ?? "/tmp", HOST: "127.0.0.1", ...opts.env };
  if (port) env.PORT = String(port);
  const args = [...(opts.nodeArgs ?? []), ...(opts.role === "worker" ? [cli, "worker"] : [cli])];
  const child = spawn(tsx, args, { cwd: repoRoot, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let out = "";
  const append = (d: Buffer) => {
    out += d.toString();
    if (out.length > OUTPUT_LIMIT * 2) out = out.slice(-OUTPUT_LIMIT);
  };
  child.stdout!.on("data", append);
  child.stderr!.on("data", append);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const running = () => child.exitCode === null && child.signalCode === null;
  const group = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // the group is gone already
    }
  };
  const proc: FacilitatorProcess = {
    name: opts.name,
    url: port ? `http://127.0.0.1:${port}` : undefined,
    pid: child.pid!,
    child,
    output: () => out.slice(-OUTPUT_LIMIT),
    exited,
    running,
    async kill9() {
      group("SIGKILL");
      await exited;
    },
    async stop(graceMs = 15_000) {
      // tsx relays SIGTERM to the node process it started; signalling the group would deliver it twice.
      if (running()) child.kill("SIGTERM");
      const timer = setTimeout(() => group("SIGKILL"), graceMs);
      const code = await exited;
      clearTimeout(timer);
      group("SIGKILL"); // anything the process left behind in its group
      return code;
    },
  };
  try {
    await waitFor(async () => {
      if (!running()) throw new Error(`${opts.name} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${proc.output()}`);
      if (opts.role === "worker") return out.includes("inference worker running");
      const res = await fetch(`${proc.url}/health`).catch(() => undefined);
      await res?.body?.cancel();
      return res?.status === 200;
    }, `${opts.name} to be ready`, opts.readyTimeoutMs ?? 60_000);
  } catch (e) {
    await proc.kill9();
    throw e;
  }
  return proc;
}

export interface ProductionEnvOptions {
  world: Pick<EvmWorld, "networks">;
  /** Networks to serve (default: every network of the world). */
  networks?: string[];
  /** RPC URL per network, instead of the world's (e.g. a FaultProxy in front of the node). */
  rpcUrls?: Record<string, string>;
  evmKeys: readonly string[];
  redisUrl: string;
  /** `fromBlock`: SETTLEMENT_RELAY_FROM_BLOCK, the relay's deployment block (default 0). */
  relay?: { address: string; network: string; relayerKey: string; fromBlock?: bigint };
  walrus?: { publisherUrl: string; aggregatorUrl: string };
  inferenceApiKey?: string;
  batchSize?: number;
  batchTimeoutMs?: number;
  receiptTimeoutMs?: number;
  /** SETTLE_LEASE_MS: how long a settle in progress holds its payment without renewing it. */
  leaseMs?: number;
  /** false: API only (the batch worker runs in `worker` processes). */
  runWorker?: boolean;
  logLevel?: string;
  /** REDIS_WAIT_REPLICAS and SETTLEMENT_QUEUE_PARTITIONS. */
  redisWaitReplicas?: number;
  queuePartitions?: number;
}

/** The environment of one production facilitator process on the local world. Nothing else is inherited. */
export function productionEnv(o: ProductionEnvOptions): Record<string, string> {
  const networks = o.networks ?? Object.keys(o.world.networks);
  const overrides = networks.map((name) => {
    const n = o.world.networks[name]!;
    return { name, rpcUrl: o.rpcUrls?.[name] ?? n.rpcUrl, asset: n.asset };
  });
  const env: Record<string, string> = {
    NETWORKS: networks.join(","),
    NETWORK_OVERRIDES: JSON.stringify(overrides),
    EVM_PRIVATE_KEYS: o.evmKeys.join(","),
    REDIS_URL: o.redisUrl,
    LOG_LEVEL: o.logLevel ?? "info",
    RUN_WORKER: o.runWorker === false ? "false" : "true",
  };
  if (o.relay) {
    env.X402_SETTLEMENT_CONTRACT = o.relay.address;
    env.SETTLEMENT_NETWORK = o.relay.network;
    env.RELAYER_PRIVATE_KEY = o.relay.relayerKey;
    env.SETTLEMENT_RELAY_FROM_BLOCK = String(o.relay.fromBlock ?? 0n);
  }
  if (o.walrus) {
    env.WALRUS_PUBLISHER_URL = o.walrus.publisherUrl;
    env.WALRUS_AGGREGATOR_URL = o.walrus.aggregatorUrl;
  }
  if (o.inferenceApiKey) env.INFERENCE_API_KEYS = o.inferenceApiKey;
  if (o.batchSize !== undefined) env.SETTLEMENT_BATCH_SIZE = String(o.batchSize);
  if (o.batchTimeoutMs !== undefined) env.SETTLEMENT_BATCH_TIMEOUT = String(o.batchTimeoutMs);
  if (o.receiptTimeoutMs !== undefined) env.SETTLE_RECEIPT_TIMEOUT_MS = String(o.receiptTimeoutMs);
  if (o.leaseMs !== undefined) env.SETTLE_LEASE_MS = String(o.leaseMs);
  if (o.redisWaitReplicas) env.REDIS_WAIT_REPLICAS = String(o.redisWaitReplicas);
  if (o.queuePartitions) env.SETTLEMENT_QUEUE_PARTITIONS = String(o.queuePartitions);
  return env;
}

/** Stops every process given, in parallel, tolerating ones that are gone already. */
export async function stopAll(procs: readonly (FacilitatorProcess | undefined)[]): Promise<void> {
  await Promise.all(procs.map((p) => p?.stop(5_000).catch(() => undefined)));
}

/** The world's Redis: one server, or every node of a cluster at once (kill: all of them). */
export type WorldRedis = Pick<RedisServer, "url" | "kill" | "restart">;

export interface ProcessWorld {
  world: EvmWorld;
  chain: EvmWorldNetwork;
  redis: WorldRedis;
  /** With `cluster`: the Redis Cluster itself, for failovers of one primary. */
  cluster?: RedisCluster;
  /** How this world's processes open the queue; a test reading the store opens it the same way. */
  queue: { partitions: number };
  walrus: WalrusService;
  relay: { address: Address; network: string; relayerKey: Hex; fromBlock: bigint };
  inferenceApiKey: string;
  /** The production environment of a process on this world; `opts` override the defaults. */
  env(opts: Omit<ProductionEnvOptions, "world" | "redisUrl"> & { redisUrl?: string }): Record<string, string>;
  stop(): Promise<void>;
}

export interface ProcessWorldOptions {
  /**
   * A Redis Cluster (3 primaries with a replica each, append-only) instead of one redis-server; its
   * processes wait for a replica on every write and split the queue in 3 partitions.
   */
  cluster?: boolean;
  /** The cluster's cluster-node-timeout (default 1 s, for quick failovers in tests; a benchmark starving the CPU wants more). */
  clusterNodeTimeoutMs?: number;
}

/**
 * One base-sepolia anvil with TestUSDC and a funded payer, a private append-only redis-server (or
 * Redis Cluster), the local Walrus service and a SettlementRelay whose relayer is `DevRole.relayer`.
 */
export async function startProcessWorld(opts: ProcessWorldOptions = {}): Promise<ProcessWorld> {
  const walrusDir = mkdtempSync(join(tmpdir(), "walrus-"));
  const [world, store, walrus] = await Promise.all([
    startEvmWorld({ networks: ["base-sepolia"] }),
    opts.cluster ? startRedisCluster({ appendOnly: true, nodeTimeoutMs: opts.clusterNodeTimeoutMs }) : startRedis({ appendOnly: true }),
    startWalrusService({ dir: walrusDir }),
  ]);
  const cluster = opts.cluster ? (store as RedisCluster) : undefined;
  const redis: WorldRedis & { stop(): Promise<void> } = cluster
    ? { url: cluster.url, kill: () => cluster.killAll(), restart: () => cluster.restartAll(), stop: () => cluster.stop() }
    : (store as RedisServer);
  const clustered = cluster ? { redisWaitReplicas: 1, queuePartitions: 3 } : {};
  const { address, blockNumber, relayerKey } = await deployRelay(world);
  const relay = { address, network: "base-sepolia", relayerKey, fromBlock: blockNumber };
  const inferenceApiKey = "grid-router-test-key";
  return {
    world,
    chain: world.networks["base-sepolia"]!,
    redis,
    cluster,
    queue: { partitions: cluster ? 3 : 1 },
    walrus,
    relay,
    inferenceApiKey,
    env: (envOpts) =>
      productionEnv({
        world,
        redisUrl: redis.url,
        relay,
        walrus: { publisherUrl: walrus.publisherUrl, aggregatorUrl: walrus.aggregatorUrl },
        inferenceApiKey,
        ...clustered,
        ...envOpts,
      }),
    async stop() {
      await Promise.all([world.stop(), redis.stop(), walrus.stop()]);
      rmSync(walrusDir, { recursive: true, force: true });
    },
  };
}
