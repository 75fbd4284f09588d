/** Builds the running facilitator from a configuration: ledger, mechanisms, HTTP app. */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { createServer, type Server } from "node:http";
import express from "express";
import type { Logger } from "pino";
import { FacilitatorError, NetworkRegistry, type PaymentMechanism, type SettlementLedger } from "@facilitator/core";
import { createEvmExactMechanism } from "@facilitator/evm";
import { Catalog } from "@facilitator/bazaar";
import { LmdbBazaarStore, LmdbLedger, RedisBazaarStore, RedisLedger } from "@facilitator/ledger";
import { createSvmExactMechanism } from "@facilitator/svm";
import { createApp, expressServerClasses } from "./app.ts";
import { redisReplication, type Config } from "./config.ts";
import { Facilitator } from "./facilitator.ts";
import { startCollector } from "./ops/collector.ts";
import { openPayments, type PaymentsServices } from "./payments/compose-payments.ts";
import { openInferencePipeline, type InferencePipeline } from "./inference-pipeline.ts";
import { inferenceRoutes } from "./routes/inference.ts";
import { gatewayRoutes } from "./routes/gateway.ts";
import { teeRoutes } from "./routes/tees.ts";
import { openTeeServices, type TeeServices } from "./tee-services.ts";
import { explorerRoutes } from "./routes/explorer.ts";
import { bazaarExtensionResponses, discoveryRoutes } from "./routes/discovery.ts";
import {
  apiKeyGuard,
  checkEvmNetworks,
  clientKey,
  configSecrets,
  createMetrics,
  formatStartupProblems,
  gracefulShutdown,
  cachedSource,
  MemoryRateLimitStore,
  metricsRouter,
  rateLimit,
  readinessRouter,
  recordPaymentOutcome,
  redisCheck,
  RedisRateLimitStore,
  rpcCheck,
  scrubber,
  signerBalanceChecks,
  urlHost,
  urlSecrets,
  walrusCheck,
  warnInsecureDefaults,
  type Metrics,
} from "./ops/index.ts";

/** Without NETWORKS, serve testnets only: a forgotten setting must never touch mainnet funds. */
const DEFAULT_EVM_NETWORKS = ["base-sepolia", "og-evm"];
const DEFAULT_SVM_NETWORKS = ["solana-devnet"];

/** A start-up problem the operator can fix: its message is printed as it is, without a stack. */
export class StartupError extends FacilitatorError {}

const LISTEN_ERRORS: Record<string, string> = {
  EADDRINUSE: "another process listens on this port",
  EADDRNOTAVAIL: "no interface of this machine has this address",
  EACCES: "this user may not listen on this port",
};

export interface Services {
  facilitator: Facilitator;
  metrics: Metrics;
  inference: InferencePipeline;
  /** Trusted TEEs: the registry, its registrar and heartbeat relay (tee-services.ts). */
  tees: TeeServices;
  registry: NetworkRegistry;
  ledger: SettlementLedger;
  mechanisms: PaymentMechanism[];
  /** The bazaar discovery catalogue, when BAZAAR_ENABLED. */
  bazaar?: Catalog;
  /** The payments record, its webhook dispatcher and operator routes (payments/compose-payments.ts). */
  payments: PaymentsServices;
  app: ReturnType<typeof createApp>;
  listen(): Promise<string>;
  /** Where /metrics listens when METRICS_PORT gives it a port of its own (set once `listen` resolved). */
  metricsUrl(): string | undefined;
  close(): Promise<void>;
}

export interface ComposeOptions {
  /** Local chains poll receipts often; real chains need not. */
  pollingIntervalMs?: number;
  /** Explorer: the block the relay was deployed at, so scans start there (the local world's; default: config.relayFromBlock). */
  relayFromBlock?: bigint;
}

export async function composeServices(config: Config, logger: Logger, opts: ComposeOptions = {}): Promise<Services> {
  const registry = new NetworkRegistry(config.networkOverrides);
  const wanted = config.networks.length
    ? config.networks
    : [...(config.evmKeys.length ? DEFAULT_EVM_NETWORKS : []), ...(config.svmKeys.length ? DEFAULT_SVM_NETWORKS : [])];
  const enabled = wanted.map((n) => registry.get(n));
  if (config.mode === "production") {
    // Refuse a wrong chain, an asset without code or a domain that differs, before the first payment finds out.
    const problems = await checkEvmNetworks(enabled);
    for (const p of problems.filter((p) => p.severity === "warning")) logger.warn({ network: p.network, check: p.check }, p.message);
    const errors = problems.filter((p) => p.severity === "error");
    if (errors.length) throw new StartupError(`start-up checks failed:\n${formatStartupProblems(errors)}`);
    warnInsecureDefaults(config, logger);
  }
  const ledger = openLedger(config);
  const mechanisms: PaymentMechanism[] = [];

  const evmNetworks = enabled.filter((n) => n.family === "evm");
  if (evmNetworks.length) {
    const evm = createEvmExactMechanism({
      networks: evmNetworks,
      signers: config.evmKeys,
      ledger,
      receiptTimeoutMs: config.receiptTimeoutMs,
      leaseMs: config.settleLeaseMs,
      maxGas: config.settleMaxGas,
      maxFeePerGas: config.settleMaxFeePerGasWei,
      contractPayerCooloffMs: config.contractPayerCooloffMs,
      eip6492Factories: config.eip6492Factories,
      maxDeployGas: config.eip6492MaxDeployGas,
      approvalFundingMaxWei: config.approvalFundingMaxWei,
      approvalFundingCooloffMs: config.approvalFundingCooloffMs,
      pollingIntervalMs: opts.pollingIntervalMs,
      // Called after a settlement is mined, long after `metrics` below exists.
      onGasSpent: (network, wei) => metrics.gasSpent({ network: network.name, role: "settlement", wei }),
    });
    mechanisms.push(evm, evm.upto);
  }
  const svmNetworks = enabled.filter((n) => n.family === "svm");
  if (svmNetworks.length) {
    mechanisms.push(
      await createSvmExactMechanism({
        networks: svmNetworks,
        feePayers: config.svmKeys,
        ledger,
        confirmTimeoutMs: config.receiptTimeoutMs,
        leaseMs: config.settleLeaseMs,
        pollIntervalMs: opts.pollingIntervalMs,
        maxComputeUnits: config.svmMaxComputeUnits,
        maxPriorityFeeLamports: config.svmMaxPriorityFeeLamports,
      }).catch((e: unknown) => {
        // The keys' shape was checked with the configuration; only loading one finds a key pair that does not match.
        throw new StartupError(`SVM_PRIVATE_KEY(S): a key could not be loaded: ${(e as Error).message}`);
      }),
    );
  }

  const bazaar = config.bazaar.enabled ? openBazaar(config) : undefined;
  const facilitator = new Facilitator(registry, mechanisms, {
    extensions: bazaar ? ["bazaar"] : [],
    onUnexpected: (err, request, action) => logger.error({ err, network: request.networkId, action }, "unexpected error in mechanism"),
    // Answers never quote a key, a secret part of an RPC URL, or an RPC host.
    scrubMessage: scrubber([...configSecrets(config), ...enabled.flatMap((n) => urlSecrets(n.rpcUrl)), ...enabled.map((n) => urlHost(n.rpcUrl))]),
  });
  // EVM settlement signers: their gas money is what runs out first in production. The EVM schemes share
  // one signer pool per network, so each (network, signer) counts once.
  const evmSigners = [
    ...new Map(
      mechanisms
        .filter((m) => m.family === "evm")
        .flatMap((m) => m.networks.flatMap((n) => m.signers().map((address) => [`${n.caip2}:${address}`, { network: n, address }] as const))),
    ).values(),
  ];
  const metrics = createMetrics({
    ledgerUnconfirmed: () => ledger.countUnconfirmed(),
    // Read at most every 15 s whatever the scrape rate: scraping /metrics must not be a way to load the RPC.
    signerBalances: cachedSource(
      () => Promise.all(evmSigners.map(async ({ network, address }) => ({ network: network.name, address, wei: await nativeBalance(network.rpcUrl, address) }))),
      SIGNER_BALANCE_CACHE_MS,
    ),
  });
  const collector =
    config.reconcileAfterMs > 0 && mechanisms.length
      ? startCollector({
          ledger,
          collect: (entry) => facilitator.collect(entry),
          afterMs: config.reconcileAfterMs,
          intervalMs: Math.min(30_000, Math.max(1_000, Math.floor(config.reconcileAfterMs / 4))),
          onOutcome: (entry, outcome) => {
            payments.recorder.collected(entry, outcome);
            logger.info(
              { event: "reconciled", network: entry.network, transaction: entry.transaction, success: outcome.success, reason: outcome.success ? undefined : outcome.reason },
              "collected a settlement nobody came back for",
            );
          },
          onError: (err, entry) => logger.warn({ err, network: entry?.network, transaction: entry?.transaction }, "collecting an unconfirmed settlement failed; trying again next round"),
        })
      : undefined;
  const rateStore = config.redisUrl ? new RedisRateLimitStore({ redis: config.redisUrl }) : new MemoryRateLimitStore();
  // Its operator routes get a budget of their own per client, like the explorer's.
  const operatorLimit = rateLimit({ perMinute: config.explorerRateLimitPerMinute, store: rateStore, logger, keyOf: (req) => `operator:ip:${clientKey(req.ip ?? req.socket.remoteAddress)}` });
  const payments = openPayments(config, { logger, registry: metrics.registry, dir: config.redisUrl ? undefined : dataSubdir(config, "payments"), guards: [operatorLimit] });
  const readiness = [
    ...enabled.map((n) => rpcCheck(`rpc ${n.name}`, n.rpcUrl, { family: n.family, chainId: n.chainId })),
    ...(config.redisUrl ? [redisCheck(config.redisUrl)] : []),
    ...(config.walrus ? [walrusCheck(config.walrus.aggregatorUrl)] : []),
    // Named without their addresses (anonymous /ready callers see the names of failing checks).
    ...signerBalanceChecks(evmSigners.map(({ network, address }) => ({ network: network.name, rpcUrl: network.rpcUrl, address })), config.minSignerBalanceWei),
  ];
  const tees = openTeeServices(config, registry, { pollingIntervalMs: opts.pollingIntervalMs, stateDir: () => dataSubdir(config, "tees") });
  const inference = openInferencePipeline(config, registry, logger, metrics, { pollingIntervalMs: opts.pollingIntervalMs, runWorker: config.runWorker, tees: tees.directory });
  const limiter = rateLimit({ perMinute: config.rateLimitPerMinute, store: rateStore, logger });
  // /metrics on the API port (behind METRICS_API_KEY when set), or alone on METRICS_PORT.
  const metricsRoutes = metricsRouter(metrics, { apiKey: config.metricsApiKey });
  const routers = [
    ...(config.metricsPort === undefined ? [metricsRoutes] : []),
    // One run of the checks per 15 s whatever the probes; details only with METRICS_API_KEY (and in the log).
    readinessRouter(readiness, { detailKeys: config.metricsApiKey ? [config.metricsApiKey] : [], logger: logger.child({ component: "readiness" }) }),
    inferenceRoutes(inference.service, { apiKeys: config.inferenceApiKeys, guards: [limiter] }),
    gatewayRoutes(inference.service, { inferenceApiKeys: config.inferenceApiKeys, guards: [limiter] }),
    teeRoutes({ registrar: tees.registrar, heartbeat: tees.heartbeat, operatorApiKey: config.tee.operatorApiKey, guards: [limiter] }),
  ];
  if (bazaar) {
    // Public reads with a budget of their own per client, apart from the payment routes'.
    const guards = [rateLimit({ perMinute: config.rateLimitPerMinute, store: rateStore, logger, keyOf: (req) => `discovery:ip:${clientKey(req.ip ?? req.socket.remoteAddress)}` })];
    routers.push(discoveryRoutes(bazaar, { guards, logger: logger.child({ component: "bazaar" }) }));
  }
  routers.push(payments.routes); // before the explorer's router: /explorer/payments is not the explorer's
  if (config.relay && config.walrus) {
    const relayNetwork = registry.get(config.relay.network);
    const explorer = express.Router();
    explorer.use(
      "/explorer",
      explorerRoutes({
        relayAddress: config.relay.address,
        rpcUrl: relayNetwork.rpcUrl,
        chainId: relayNetwork.chainId!,
        aggregatorUrl: config.walrus.aggregatorUrl,
        statusLookup: (q) => inference.service.status(q),
        teeRegistry: config.tee.registryAddress && { address: config.tee.registryAddress, roots: config.tee.attestationRoots },
        fromBlock: opts.relayFromBlock ?? config.relayFromBlock,
        // Its own budget per client, apart from the payment routes', in the same store.
        guards: [
          rateLimit({ perMinute: config.explorerRateLimitPerMinute, store: rateStore, logger, keyOf: (req) => `explorer:ip:${clientKey(req.ip ?? req.socket.remoteAddress)}` }),
        ],
        logger: logger.child({ component: "explorer" }),
      }),
    );
    routers.push(explorer);
  }
  const app = createApp({
    facilitator,
    logger,
    paymentGuards: [recordPaymentOutcome(metrics), apiKeyGuard(config.apiKeys), limiter],
    routers,
    inference,
    trustProxy: config.trustProxy,
    extensionResponses: bazaar && bazaarExtensionResponses(bazaar, logger.child({ component: "bazaar" })),
    onSettled: (s) => payments.recorder.settled(s),
  });
  let server: Server | undefined;
  let metricsServer: Server | undefined;
  let metricsUrl: string | undefined;
  return {
    facilitator,
    metrics,
    inference,
    tees,
    registry,
    ledger,
    mechanisms,
    bazaar,
    payments,
    app,
    metricsUrl: () => metricsUrl,
    listen: async () => {
      if (config.metricsPort !== undefined) {
        const metricsApp = express();
        metricsApp.disable("x-powered-by");
        metricsApp.use(metricsRoutes);
        metricsApp.use((_req, res) => void res.status(404).json({ error: "not_found", message: "this port serves GET /metrics only" }));
        metricsServer = createServer({ headersTimeout: 10_000, requestTimeout: 15_000 }, metricsApp);
        metricsUrl = await new Promise<string>((resolve, reject) => {
          metricsServer!.once("error", (e: NodeJS.ErrnoException) =>
            reject(new StartupError(`METRICS_PORT, HOST: cannot listen on ${config.host}:${config.metricsPort}: ${LISTEN_ERRORS[e.code ?? ""] ?? e.message}`)),
          );
          metricsServer!.listen(config.metricsPort, config.host, () => {
            const { port } = metricsServer!.address() as { port: number };
            resolve(`http://${config.host === "0.0.0.0" ? "127.0.0.1" : config.host}:${port}`);
          });
        });
      }
      return new Promise((resolve, reject) => {
        // Tighter than Node's defaults (60 s headers, 300 s request, checked every 30 s): a client that
        // dribbles its request cannot hold a socket, or a graceful shutdown, for minutes. These bound
        // receiving the request only; a settle waiting for its receipt is not cut.
        server = createServer({ headersTimeout: 10_000, requestTimeout: 15_000, connectionsCheckingInterval: 1_000, ...expressServerClasses(app) }, app);
        server.listen(config.port, config.host, () => {
          const { port } = server!.address() as { port: number };
          resolve(`http://${config.host === "0.0.0.0" ? "127.0.0.1" : config.host}:${port}`);
        });
        server.once("error", (e: NodeJS.ErrnoException) => reject(new StartupError(`PORT, HOST: cannot listen on ${config.host}:${config.port}: ${LISTEN_ERRORS[e.code ?? ""] ?? e.message}`)));
      });
    },
    async close() {
      const drain = [async () => collector?.stop(), () => payments.close(), () => inference.close(), () => ledger.close(), () => tees.close(), async () => bazaar?.close(), () => rateStore.close(), () => closeServer(metricsServer)];
      if (server) await gracefulShutdown({ server, timeoutMs: config.receiptTimeoutMs + 5_000, logger, drain });
      else for (const step of drain) await step();
    },
  };
}

/** Signer balances in /metrics are read at most this often. */
const SIGNER_BALANCE_CACHE_MS = 15_000;

function closeServer(server: Server | undefined): Promise<void> {
  if (!server?.listening) return Promise.resolve();
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

async function nativeBalance(rpcUrl: string, address: string): Promise<bigint> {
  const res = await fetch(rpcUrl, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_getBalance", params: [address, "latest"] }),
    signal: AbortSignal.timeout(2_000),
  });
  return BigInt(((await res.json()) as { result: string }).result);
}

/** Finished entries expire after `ledgerRetentionMs` (see `isFinished` in @facilitator/ledger for why that is safe). */
function openLedger(config: Config): SettlementLedger {
  const retentionMs = config.ledgerRetentionMs;
  // Its client fails fast while Redis is away, so /settle and /verify answer at once instead of waiting.
  if (config.redisUrl) return new RedisLedger({ redis: config.redisUrl, retentionMs, replication: redisReplication(config) });
  return new LmdbLedger(dataSubdir(config, "ledger"), { retentionMs });
}

/** The catalogue beside the ledger: in the same Redis, or in an LMDB directory of its own (its writes never wait on settlements'). */
function openBazaar(config: Config): Catalog {
  const store = config.redisUrl ? new RedisBazaarStore({ redis: config.redisUrl, replication: redisReplication(config) }) : new LmdbBazaarStore(dataSubdir(config, "bazaar"));
  return new Catalog(store, config.bazaar);
}

function dataSubdir(config: Config, name: string): string {
  const dir = join(config.dataDir, name);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new StartupError(`DATA_DIR: cannot create ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return dir;
}
