/** The inference pipeline as the server runs it: queue, intake, worker, and the /settle header door. */
import { join } from "node:path";
import type { Logger } from "pino";
import { Reason, type NetworkRegistry, type Rejection } from "@facilitator/core";
import {
  BullQueue,
  LmdbQueue,
  InferenceService,
  recordInputFromSettleHeaders,
  RelayClient,
  SETTLE_HEADER_DEFAULT_TYPE,
  WalrusClient,
  type HeaderBag,
  type InferenceQueue,
  type TeeLookup,
  type ValidationConfig,
  type WorkerHandle,
} from "@facilitator/inference";
import { redisReplication, type Config } from "./config.ts";
import { inferenceCaller } from "./inference-auth.ts";
import type { Metrics } from "./ops/index.ts";

export interface InferencePipeline {
  service: InferenceService;
  validation: ValidationConfig;
  worker?: WorkerHandle;
  /**
   * Checks the /settle inference headers before any payment moves, origin included (a registered TEE's
   * signature, or an inference key: see inference-auth.ts); undefined when they are fine or absent.
   */
  precheck(headers: HeaderBag): Promise<Rejection | undefined>;
  /** Queues the record the headers name, linked to the settled payment (checked again, with the same rules). */
  submitFromSettle(headers: HeaderBag, payment: { network: string; transaction: string }): Promise<{ id: string; status: string } | { error: Rejection } | undefined>;
  close(): Promise<void>;
}

export function openInferencePipeline(
  config: Config,
  registry: NetworkRegistry,
  logger: Logger,
  metrics: Metrics,
  opts: { pollingIntervalMs?: number; runWorker: boolean; tees?: TeeLookup },
): InferencePipeline {
  const queue: InferenceQueue = config.redisUrl
    ? new BullQueue({ connection: config.redisUrl, partitions: config.queuePartitions, replication: redisReplication(config) })
    : new LmdbQueue({ path: join(config.dataDir, "inference") });
  const teeKeys = new Map(Object.entries(config.teeKeys).map(([id, address]) => [id.toLowerCase(), address]));
  const validation: ValidationConfig = {
    // Unset: required as soon as a TEE is registered, in TEE_KEYS or a TEE registry.
    requireTeeSignature: config.requireTeeSignature ?? (teeKeys.size > 0 || config.tee.registryAddress !== undefined),
    teeKeys,
    heartbeatMaxAgeSeconds: config.tee.heartbeatMaxAgeSeconds,
  };
  const callerOf = inferenceCaller(config.inferenceApiKeys);
  /** Validation options for a /settle request: its inference key, if any, authenticates its record. */
  const settleOptions = (headers: HeaderBag) => ({ defaultType: SETTLE_HEADER_DEFAULT_TYPE, authenticated: callerOf(headers).authenticated });
  const explain = (headers: HeaderBag, refused: Rejection): Rejection =>
    refused.reason === Reason.inferenceUnauthenticated && callerOf(headers).presentedInferenceHeader
      ? { reason: refused.reason, message: "X-Inference-Authorization does not carry a valid inference API key (Bearer <key>), and the record has no registered TEE's signature" }
      : refused;
  const service = new InferenceService({ queue, validation, tees: opts.tees });
  metrics.setSources({
    queueDepth: async () => (await queue.stats()).records.queued,
    oldestQueuedAgeSeconds: async () => {
      const oldest = (await queue.stats()).oldestQueuedAt;
      return oldest ? (Date.now() - oldest) / 1000 : 0;
    },
  });

  let worker: WorkerHandle | undefined;
  const relayerKey = config.relayerKey ?? config.evmKeys[0];
  if (opts.runWorker && config.relay && config.walrus && relayerKey) {
    const network = registry.get(config.relay.network);
    const relay = new RelayClient({
      rpcUrl: network.rpcUrl,
      chainId: network.chainId!,
      relayAddress: config.relay.address,
      relayerKey,
      network: network.name,
      pollingIntervalMs: opts.pollingIntervalMs,
      replaceAfterMs: config.relayReplaceAfterMs,
    });
    const blobs = new WalrusClient({
      publisherUrl: config.walrus.publisherUrl,
      aggregatorUrl: config.walrus.aggregatorUrl,
      epochs: config.walrus.epochs,
      permanent: config.walrus.permanent,
    });
    worker = service.startWorker({
      relay,
      blobs,
      batchSize: config.batchSize,
      batchTimeoutMs: config.batchTimeoutMs,
      batchesInFlight: config.batchesInFlight,
      compactDumpAbove: config.compactDumpAbove,
      onEvent: (e) => {
        if (e.type === "anchored") {
          metrics.batchAnchored();
          if (e.feeWei !== undefined) metrics.gasSpent({ network: network.name, role: "relayer", wei: e.feeWei });
        }
        const level = e.type === "parked" || e.type === "loop_error" ? "error" : e.type === "replaced" ? "warn" : "info";
        logger[level]({ event: e.type, batch: e.batchId, size: e.size, reason: e.reason }, e.message ?? `inference batch ${e.type}`);
      },
    });
  } else if (opts.runWorker) {
    logger.warn("inference records are accepted but not anchored: set X402_SETTLEMENT_CONTRACT, WALRUS_PUBLISHER_URL and a relayer key to run the worker");
  }

  return {
    service,
    validation,
    worker,
    async precheck(headers) {
      const parsed = recordInputFromSettleHeaders(headers, { network: "pending", transaction: "pending" });
      if (!parsed) return undefined;
      if ("error" in parsed) return parsed.error;
      let checked;
      try {
        checked = await service.check(parsed.input, settleOptions(headers));
      } catch {
        return { reason: Reason.unavailable, message: "the TEE registry cannot be read now; nothing was sent, retry shortly" };
      }
      return checked.ok ? undefined : explain(headers, { reason: checked.reason, message: checked.message });
    },
    async submitFromSettle(headers, payment) {
      const parsed = recordInputFromSettleHeaders(headers, payment);
      if (!parsed) return undefined;
      if ("error" in parsed) return parsed;
      try {
        const [result] = await service.submit([parsed.input], settleOptions(headers));
        worker?.wake();
        return result && "id" in result ? { id: result.id, status: result.status } : { error: explain(headers, (result as { error: Rejection }).error) };
      } catch (e) {
        logger.error({ err: e }, "inference record of a settled payment could not be queued");
        return { error: { reason: "service_unavailable", message: "the payment settled, but its inference record could not be queued; post it to /inference/settlements" } as Rejection };
      }
    },
    close: () => service.close(), // stops its workers first, then closes the queue
  };
}
