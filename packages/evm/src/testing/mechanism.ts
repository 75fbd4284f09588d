/** The settlement side of this package's chain tests: a ledger in a temporary directory and the mechanism on a test chain. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NetworkInfo, SettlementLedger } from "@facilitator/core";
import { LmdbLedger } from "@facilitator/ledger";
import type { Hex } from "viem";
import { createEvmExactMechanism, type EvmExactMechanism, type EvmExactMechanismOptions } from "../mechanism.ts";
import type { ChainFixture } from "./chains.ts";

export interface TempLedger {
  ledger: LmdbLedger;
  dispose(): Promise<void>;
}

/** An LmdbLedger in a temporary directory, removed by `dispose`. */
export function tempLedger(): TempLedger {
  const dir = mkdtempSync(join(tmpdir(), "evm-ledger-"));
  const ledger = new LmdbLedger(dir);
  return {
    ledger,
    async dispose() {
      await ledger.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The mechanism the chain suites test: one chain, its facilitator key, short local bounds (`options` override them). */
export function testMechanism(
  chain: { network: NetworkInfo; facilitatorKey: Hex },
  ledger: SettlementLedger,
  options: Partial<EvmExactMechanismOptions> = {},
): EvmExactMechanism {
  return createEvmExactMechanism({
    networks: [chain.network],
    signers: [chain.facilitatorKey],
    ledger,
    receiptTimeoutMs: 5000,
    pollingIntervalMs: 20,
    ...options,
  });
}

export interface ChainWithMechanism<C extends ChainFixture> {
  chain: C;
  store: TempLedger;
  mechanism: EvmExactMechanism;
  stop(): Promise<void>;
}

/**
 * A test chain (`startTestChain` or `startPermitTestChain`), a temporary ledger and `testMechanism` on
 * both. A suite's `beforeAll` takes the three and returns `stop`.
 */
export async function startChainWithMechanism<C extends ChainFixture>(
  start: () => Promise<C>,
  options: Partial<EvmExactMechanismOptions> = {},
): Promise<ChainWithMechanism<C>> {
  const chain = await start();
  const store = tempLedger();
  return {
    chain,
    store,
    mechanism: testMechanism(chain, store.ledger, options),
    async stop() {
      await store.dispose();
      await chain.stop();
    },
  };
}
