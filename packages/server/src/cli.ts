/**
 * `pnpm start`: with no production configuration, starts the local world (chains, tokens, services)
 * and a facilitator on it; otherwise runs the facilitator the environment describes.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { devnetJsonPath, removeDevnetJson, repoRoot, writeDevnetJson } from "@facilitator/devnet";
import { loadConfig, type Config } from "./config.ts";
import { composeServices, StartupError } from "./compose.ts";
import { localWorldConfig, startLocalWorld, type LocalWorld } from "./local-world.ts";
import { createLogger } from "./logger.ts";
import { configSecrets, createMetrics, scrubber, scrubbingDestination } from "./ops/index.ts";
import { openInferencePipeline } from "./inference-pipeline.ts";
import { FacilitatorError, NetworkRegistry } from "@facilitator/core";

/** Blanks the configuration's secrets in what is printed when start-up fails (set once the configuration is read). */
let scrub = (text: string) => text;

async function main(): Promise<void> {
  let config = loadConfig();
  scrub = scrubber(configSecrets(config));
  const logger = createLogger(config.logLevel, scrubbingDestination(configSecrets(config)));
  const stops: (() => Promise<void>)[] = [];
  const shutdown = async (signal: string) => {
    logger.info({ signal }, "shutting down");
    for (const stop of stops.reverse()) await stop().catch((err) => logger.error({ err }, "shutdown step failed"));
    process.exit(0);
  };
  process.once("SIGINT", () => void shutdown("SIGINT"));
  process.once("SIGTERM", () => void shutdown("SIGTERM"));

  if (process.argv[2] === "worker") return runWorkerOnly(config, logger, stops);

  let world: LocalWorld | undefined;
  if (config.mode === "embedded") {
    logger.info("no production configuration: starting the local world");
    const stateDir = join(repoRoot, ".devnet", "state");
    rmSync(stateDir, { recursive: true, force: true }); // the local chains are new, so is their state
    world = await startLocalWorld(stateDir);
    stops.push(() => world!.stop());
    config = localWorldConfig(config, world, stateDir);
  }

  const services = await composeServices(config, logger, { pollingIntervalMs: world ? 50 : undefined, relayFromBlock: world?.relayFromBlock });
  stops.push(() => services.close());
  const url = await services.listen();
  logger.info({ url, metricsUrl: services.metricsUrl(), networks: services.mechanisms.flatMap((m) => m.networks.map((n) => n.name)) }, "facilitator listening");

  if (world) {
    writeDevnetJson({ ...world.json, facilitatorUrl: url });
    stops.push(async () => removeDevnetJson());
    printWorld(url, world.json);
  }
}

/** `pnpm worker`: only the inference batch worker, for deployments that scale API and workers apart. */
async function runWorkerOnly(config: Config, logger: ReturnType<typeof createLogger>, stops: (() => Promise<void>)[]): Promise<void> {
  if (config.mode !== "production" || !config.redisUrl) {
    throw new StartupError("pnpm worker runs beside API processes and shares their queue: set REDIS_URL and the production configuration");
  }
  const registry = new NetworkRegistry(config.networkOverrides);
  const pipeline = openInferencePipeline(config, registry, logger, createMetrics(), { runWorker: true });
  if (!pipeline.worker) {
    throw new StartupError("the worker needs X402_SETTLEMENT_CONTRACT, SETTLEMENT_NETWORK, WALRUS_PUBLISHER_URL and a relayer key");
  }
  stops.push(() => pipeline.close());
  logger.info({ relay: config.relay }, "inference worker running");
}

function printWorld(url: string, json: LocalWorld["json"]): void {
  const lines = [`\nx402 facilitator on the local world: ${url}`, `devnet description: ${devnetJsonPath}\n`];
  for (const [name, n] of Object.entries(json.networks) as [string, Record<string, any>][]) {
    lines.push(`  ${name.padEnd(14)} rpc ${n.rpcUrl}  asset ${n.asset.address}${n.asset.name ? ` (${n.asset.name})` : ""}`);
    lines.push(`  ${"".padEnd(14)} payer ${n.payer.address}  payTo ${n.payTo}`);
    lines.push(`  ${"".padEnd(14)} payer test key ${n.payer.privateKey ?? n.payer.secretKey}  (local test key, worthless elsewhere)`);
  }
  if (json.settlementRelay) lines.push(`\n  SettlementRelay ${json.settlementRelay.address} on ${json.settlementRelay.network}; explorer ${url}/explorer`);
  if (json.walrus) lines.push(`  Walrus publisher ${json.walrus.publisherUrl}  aggregator ${json.walrus.aggregatorUrl}`);
  if (json.inferenceApiKey) lines.push(`  inference door: POST ${url}/inference/settlements with Authorization: Bearer ${json.inferenceApiKey}`);
  if (json.teeRegistry) lines.push(`  TEERegistry ${json.teeRegistry.address}: both local TEEs registered through their attestation (test root in devnet.json)`);
  if (json.tee) lines.push(`  local TEE ${json.tee.teeId} (key ${json.tee.address}): records must carry its signature (TEE attestation v2)`);
  if (json.gatewayTee) lines.push(`  gateway TEE ${json.gatewayTee.teeId}: RSA-PSS as OpenGradient's tee-gateway signs; POST ${url}/settle_data, POST ${url}/heartbeat`);
  lines.push("\nCtrl-C stops everything.\n");
  console.log(lines.join("\n"));
}

main().catch((e: unknown) => {
  // Configuration and start-up problems are the operator's to fix: their message alone, no stack.
  if (e instanceof FacilitatorError) {
    console.error(scrub(e.message));
    process.exit(2);
  }
  console.error(scrub(e instanceof Error ? (e.stack ?? e.message) : String(e)));
  process.exit(1);
});
