/**
 * The facilitator as operators run it: separate OS processes (`tsx packages/server/src/cli.ts`, and its
 * `worker` command) configured by environment only, plus the fault injectors the process suites use.
 *
 * Each facilitator runs in its own process group (tsx starts the real node process as its child), so
 * `kill9` takes the whole process down at once, like an OOM kill or a lost machine would.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createPublicClient, erc20Abi, http, parseAbi, type Address, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import {
  devKey,
  DevRole,
  freePort,
  loadArtifact,
  repoRoot,
  startEvmWorld,
  startRedis,
  startWalrusService,
  type EvmWorld,
  type EvmWorldNetwork,
  type RedisServer,
  type WalrusService,
  waitFor,
} from "@facilitator/devnet";
import { signEip3009Payload } from "@facilitator/evm";
import { deploySettlementRelay, SETTLEMENT_RELAY_ABI } from "@facilitator/inference";

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
}

export async function spawnFacilitator(opts: SpawnOptions): Promise<FacilitatorProcess> {
  const port = opts.role === "api" ? await freePort() : undefined;
  const env: Record<string, string> = { PATH: process.env.PATH!, HOME: process.env.HOME ?? "/tmp", HOST: "127.0.0.1", ...opts.env };
  if (port) env.PORT = String(port);
  const args = opts.role === "worker" ? [cli, "worker"] : [cli];
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
  return env;
}

/** Stops every process given, in parallel, tolerating ones that are gone already. */
export async function stopAll(procs: readonly (FacilitatorProcess | undefined)[]): Promise<void> {
  await Promise.all(procs.map((p) => p?.stop(5_000).catch(() => undefined)));
}

// ---- fault injection ----

export type ProxyMode =
  /** Requests go through to the node. */
  | "pass"
  /** Every connection is reset at once: the node is unreachable. */
  | "refuse"
  /** Requests are read and never answered: the node hangs. */
  | "hang";

export interface FaultProxy {
  url: string;
  mode: ProxyMode;
  setMode(mode: ProxyMode): void;
  /**
   * After a request whose JSON-RPC body calls one of `methods` has been answered, switch to `mode`
   * (e.g. cut the node right after a transaction was broadcast). One-shot.
   */
  switchAfter(methods: readonly string[], mode: ProxyMode): void;
  /** JSON-RPC methods that reached the node, in order. */
  readonly forwarded: string[];
  stop(): Promise<void>;
}

/**
 * An HTTP proxy in front of a JSON-RPC node that can be cut and restored. Restarting anvil itself
 * would lose the chain's state, so the node stays up and its reachability is what changes.
 */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  let mode: ProxyMode = "pass";
  let trigger: { methods: readonly string[]; mode: ProxyMode } | undefined;
  const forwarded: string[] = [];
  const sockets = new Set<Socket>();
  const held = new Set<ServerResponse>();

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (mode === "refuse") return void req.socket.destroy();
      if (mode === "hang") return void held.add(res);
      const body = Buffer.concat(chunks);
      const methods = rpcMethods(body);
      fetch(target, { method: "POST", headers: { "content-type": req.headers["content-type"] ?? "application/json" }, body })
        .then(async (answer) => {
          const text = Buffer.from(await answer.arrayBuffer());
          // The node answered, but the node was cut meanwhile: the caller never hears back.
          if (mode === "refuse") return void req.socket.destroy();
          if (mode === "hang") return void held.add(res);
          forwarded.push(...methods);
          res.writeHead(answer.status, { "content-type": answer.headers.get("content-type") ?? "application/json" });
          res.end(text);
          if (trigger && methods.some((m) => trigger!.methods.includes(m))) {
            mode = trigger.mode;
            trigger = undefined;
            if (mode === "refuse") for (const s of sockets) s.destroy();
          }
        })
        .catch(() => req.socket.destroy());
    });
  });
  server.on("connection", (s) => {
    if (mode === "refuse") return void s.destroy();
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port));
  });
  const release = () => {
    for (const res of held) res.socket?.destroy();
    held.clear();
  };
  return {
    url: `http://127.0.0.1:${port}`,
    get mode() {
      return mode;
    },
    setMode(next) {
      mode = next;
      if (next !== "hang") release();
      if (next === "refuse") for (const s of sockets) s.destroy();
    },
    switchAfter(methods, next) {
      trigger = { methods, mode: next };
    },
    forwarded,
    async stop() {
      release();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function rpcMethods(body: Buffer): string[] {
  try {
    const parsed = JSON.parse(body.toString()) as { method?: string } | { method?: string }[];
    return (Array.isArray(parsed) ? parsed : [parsed]).map((m) => String(m.method));
  } catch {
    return [];
  }
}

// ---- payments and answers over HTTP ----

export interface SettleBody {
  x402Version: 2;
  paymentPayload: { x402Version: 2; accepted: Record<string, unknown>; payload: unknown };
  paymentRequirements: Record<string, unknown>;
}

/** A fresh v2 `exact` payment of `value` from the world's payer to its payTo, as a /verify or /settle body. */
export async function evmPaymentBody(n: EvmWorldNetwork, value: bigint): Promise<{ body: SettleBody; nonce: Hex }> {
  const requirements = {
    scheme: "exact",
    network: n.caip2,
    amount: value.toString(),
    asset: n.asset.address,
    payTo: n.payTo,
    maxTimeoutSeconds: 60,
    extra: { name: n.asset.name, version: n.asset.version },
  };
  const payload = await signEip3009Payload(privateKeyToAccount(n.payer.privateKey), {
    domain: { name: n.asset.name, version: n.asset.version, chainId: n.chainId, verifyingContract: n.asset.address },
    to: n.payTo,
    value,
  });
  return {
    body: { x402Version: 2, paymentPayload: { x402Version: 2, accepted: requirements, payload }, paymentRequirements: requirements },
    nonce: payload.authorization.nonce as Hex,
  };
}

export interface HttpAnswer<T = any> {
  status: number;
  body: T;
  headers: Headers;
  ms: number;
}

/** POSTs JSON; a connection error (the process died under the request) resolves with status 0 and the error. */
export async function postJson<T = any>(url: string, body: unknown, opts: { headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<HttpAnswer<T>> {
  const started = Date.now();
  try {
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...opts.headers },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(opts.timeoutMs ?? 60_000),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, body: parsed as T, headers: res.headers, ms: Date.now() - started };
  } catch (e) {
    return { status: 0, body: { error: (e as Error).message } as T, headers: new Headers(), ms: Date.now() - started };
  }
}

// ---- what the chain shows ----

const tokenEvents = parseAbi([
  "event Transfer(address indexed from, address indexed to, uint256 value)",
  "event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce)",
]);

/** Chain reads for assertions on one network of the world. */
export function chainView(n: EvmWorldNetwork) {
  const client = createPublicClient({ transport: http(n.rpcUrl), pollingInterval: 50, cacheTime: 0 });
  return {
    client,
    blockNumber: () => client.getBlockNumber(),
    /** Transactions sent so far from `who` (mined). */
    txCount: (who: Address) => client.getTransactionCount({ address: who, blockTag: "latest" }),
    balanceOf: (who: Address) => client.readContract({ address: n.asset.address, abi: erc20Abi, functionName: "balanceOf", args: [who] }),
    /** How many times each EIP-3009 authorization nonce of the payer was used on chain since `fromBlock`. */
    async authorizationsUsed(fromBlock: bigint): Promise<Map<string, number>> {
      const logs = await client.getContractEvents({ address: n.asset.address, abi: tokenEvents, eventName: "AuthorizationUsed", fromBlock, toBlock: "latest" });
      const counts = new Map<string, number>();
      for (const l of logs) counts.set(l.args.nonce!.toLowerCase(), (counts.get(l.args.nonce!.toLowerCase()) ?? 0) + 1);
      return counts;
    },
    /** Token transfers from the payer to payTo since `fromBlock`. */
    async payments(fromBlock: bigint) {
      const logs = await client.getContractEvents({
        address: n.asset.address,
        abi: tokenEvents,
        eventName: "Transfer",
        args: { from: n.payer.address, to: n.payTo },
        fromBlock,
        toBlock: "latest",
      });
      return logs.map((l) => ({ value: l.args.value!, transactionHash: l.transactionHash, from: l.args.from! }));
    },
    /** The sender of each transaction hash. */
    async senders(hashes: readonly Hex[]): Promise<Address[]> {
      return Promise.all(hashes.map(async (hash) => (await client.getTransaction({ hash })).from));
    },
  };
}

/** BatchSettlement events of the relay since `fromBlock`: what an auditor would scan. */
export async function relayBatches(rpcUrl: string, relayAddress: Address, fromBlock: bigint) {
  const client = createPublicClient({ transport: http(rpcUrl) });
  const logs = await client.getContractEvents({ address: relayAddress, abi: SETTLEMENT_RELAY_ABI, eventName: "BatchSettlement", fromBlock, toBlock: "latest" });
  return logs.map((l) => ({ root: l.args.merkleRoot!, batchSize: Number(l.args.batchSize!), transactionHash: l.transactionHash, blockNumber: l.blockNumber }));
}

// ---- the shared world of a process suite ----

export interface ProcessWorld {
  world: EvmWorld;
  chain: EvmWorldNetwork;
  redis: RedisServer;
  walrus: WalrusService;
  relay: { address: Address; network: string; relayerKey: Hex; fromBlock: bigint };
  inferenceApiKey: string;
  /** The production environment of a process on this world; `opts` override the defaults. */
  env(opts: Omit<ProductionEnvOptions, "world" | "redisUrl"> & { redisUrl?: string }): Record<string, string>;
  stop(): Promise<void>;
}

/**
 * One base-sepolia anvil with TestUSDC and a funded payer, a private append-only redis-server, the
 * local Walrus service and a SettlementRelay whose relayer is `DevRole.relayer`.
 */
export async function startProcessWorld(): Promise<ProcessWorld> {
  const walrusDir = mkdtempSync(join(tmpdir(), "walrus-"));
  const [world, redis, walrus] = await Promise.all([startEvmWorld({ networks: ["base-sepolia"] }), startRedis({ appendOnly: true }), startWalrusService({ dir: walrusDir })]);
  const chain = world.networks["base-sepolia"]!;
  const relayerKey = devKey(DevRole.relayer);
  const relay = await deploySettlementRelay({
    rpcUrl: chain.rpcUrl,
    chainId: chain.chainId,
    deployerKey: world.deployerKey,
    relayers: [privateKeyToAccount(relayerKey).address],
    artifact: loadArtifact("SettlementRelay"),
    pollingIntervalMs: 50,
  });
  const inferenceApiKey = "grid-router-test-key";
  return {
    world,
    chain,
    redis,
    walrus,
    relay: { address: relay.address, network: "base-sepolia", relayerKey, fromBlock: relay.blockNumber },
    inferenceApiKey,
    env: (opts) =>
      productionEnv({
        world,
        redisUrl: redis.url,
        relay: { address: relay.address, network: "base-sepolia", relayerKey, fromBlock: relay.blockNumber },
        walrus: { publisherUrl: walrus.publisherUrl, aggregatorUrl: walrus.aggregatorUrl },
        inferenceApiKey,
        ...opts,
      }),
    async stop() {
      await Promise.all([world.stop(), redis.stop(), walrus.stop()]);
      rmSync(walrusDir, { recursive: true, force: true });
    },
  };
}

/** One JSON-RPC call straight to a node (anvil's test methods: evm_setAutomine, evm_mine, ...). */
export async function nodeRpc<T = unknown>(rpcUrl: string, method: string, params: unknown[] = []): Promise<T> {
  const res = await fetch(rpcUrl, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) });
  const body = (await res.json()) as { result?: T; error?: { message: string } };
  if (body.error) throw new Error(`${method}: ${body.error.message}`);
  return body.result as T;
}
