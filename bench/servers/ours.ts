/** Child process: our facilitator, composed as `pnpm start` composes it, on the bench's local chains. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NetworkOverride } from "@facilitator/core";
import { composeServices, createLogger, Facilitator, loadConfig, type Config } from "@facilitator/server";
import { EvmSigner } from "@facilitator/evm";
import { BatchingJsonRpcClient } from "@facilitator/jsonrpc";
import { LmdbLedger } from "@facilitator/ledger";
import { childSpec, onStop, reportFailure, reportReady } from "../lib/child.ts";
import { serveSpans, wrapFetch, wrapMethod } from "../lib/spans.ts";
import { BASE_SEPOLIA, SOLANA_DEVNET, type OursSpec, type ServerInfo } from "../lib/spec.ts";

async function main(): Promise<void> {
  const spec = childSpec<OursSpec>();
  if (process.env.BENCH_SPANS === "1") instrument();
  const dataDir = mkdtempSync(join(tmpdir(), "bench-ours-"));
  const networks: string[] = [];
  const overrides: NetworkOverride[] = [];
  if (spec.evm) {
    networks.push(BASE_SEPOLIA.network);
    overrides.push({ name: BASE_SEPOLIA.network, rpcUrl: spec.evm.rpcUrl, asset: spec.evm.asset });
  }
  if (spec.svm) {
    networks.push(SOLANA_DEVNET.network);
    overrides.push({ name: SOLANA_DEVNET.network, rpcUrl: spec.svm.rpcUrl, asset: { address: spec.svm.mint } });
  }
  const config: Config = {
    ...loadConfig({}),
    port: 0,
    networks,
    networkOverrides: overrides,
    evmKeys: spec.evm?.keys ?? [],
    svmKeys: spec.svm?.keys ?? [],
    dataDir,
  };
  // Request logs off, as for the reference (which has none): both measured without log I/O.
  const services = await composeServices(config, createLogger("silent"), { pollingIntervalMs: spec.pollingIntervalMs });
  const url = await services.listen();
  onStop(async () => {
    await services.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  reportReady({ url, pid: process.pid } satisfies ServerInfo);
}

main().catch(reportFailure);

/** Spans around the I/O and the expensive steps (bench/lib/spans.ts); only with BENCH_SPANS=1. */
function instrument(): void {
  wrapFetch(); // anything still on fetch
  wrapMethod(BatchingJsonRpcClient.prototype, "post", "rpc post"); // EVM and Solana calls go over node:http
  wrapMethod(LmdbLedger.prototype, "get", "ledger get");
  wrapMethod(LmdbLedger.prototype, "compareAndSet", "ledger compareAndSet (fsync)");
  wrapMethod(LmdbLedger.prototype, "release", "ledger release (fsync)");
  wrapMethod(EvmSigner.prototype, "sign", "evm sign transaction");
  wrapMethod(Facilitator.prototype, "verify", "facilitator.verify (whole)");
  wrapMethod(Facilitator.prototype, "settle", "facilitator.settle (whole)");
  serveSpans();
}
