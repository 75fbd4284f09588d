/**
 * EVM settlement: the chain side of core's settlement engine (core/src/settlement.ts), which owns
 * the ledger (claims, leases, outcomes, duplicates, take-overs). A payment's signature is proven
 * before anything is claimed; an EIP-6492 wallet is deployed first (wallet-deployment.ts); then
 * `EvmSettlement` (evm-settlement.ts) checks on chain, signs, records, sends and waits.
 */
import {
  collectOnLedger,
  Reason,
  reject,
  settleOnLedger,
  type NetworkInfo,
  type PaymentRequest,
  type Rejection,
  type SettleOutcome,
  type SettlementLedger,
} from "@facilitator/core";
import type { Address } from "viem";
import type { WalletDeployment } from "./erc6492.ts";
import { EvmSettlement, engineConfig, ledgerPayment } from "./evm-settlement.ts";
import type { FeeOracle } from "./fees.ts";
import { nodeMessage } from "./rpc-errors.ts";
import { contractPayerCoolingOff } from "./settle-limits.ts";
import type { SignerPool } from "./signer-pool.ts";
import type { EvmChainContext, TransferMethodHandler } from "./transfer-method.ts";
import { deployPayerWallet, provePayerSignature } from "./wallet-deployment.ts";

/** Everything settlement needs about one network. */
export interface NetworkRuntime {
  network: NetworkInfo;
  chain: EvmChainContext;
  handler: TransferMethodHandler;
  pool: SignerPool;
  fees: FeeOracle;
}

export interface SettleConfig {
  ledger: SettlementLedger;
  receiptTimeoutMs: number;
  pollingIntervalMs: number;
  stallCheckMs: number;
  /** Lease of a claim or broadcast: renewed every leaseMs/3 by its holder; once run out, another settle may take it over. */
  leaseMs: number;
  /** Gas limit = estimate x this / 100, at most `maxGas`. */
  gasMarginPercent: bigint;
  /** No settlement transaction may need more gas than this: a simulation above it is refused before anything is signed. */
  maxGas: bigint;
  /** No settlement transaction pays more per gas than this: while the chain asks more, nothing is signed. */
  maxFeePerGas: bigint;
  /**
   * After a settlement of a payer whose signature only ERC-1271 proved (a contract, or an EIP-7702
   * account) reverts on chain, that payer is refused for this long (ms; 0: never). Such a wallet can
   * pass every simulation and still revert when mined, at our cost and none of its own.
   */
  contractPayerCooloffMs: number;
  now(): number;
  /** Factories an EIP-6492 signature may deploy its wallet through (wallet-deployment.ts). */
  eip6492Factories: readonly Address[];
  /** Most gas a wallet's deployment may need (wallets cost more to make than to pay from). */
  maxDeployGas: bigint;
  /** Told what each mined settlement transaction cost (gas used x effective price), once, reverted ones included. */
  onGasSpent?: (network: NetworkInfo, wei: bigint) => void;
}

/** `deployment`: the factory call an EIP-6492 signature named (taken off the payload by the caller). */
export async function settlePayment(rt: NetworkRuntime, cfg: SettleConfig, request: PaymentRequest, deployment?: WalletDeployment): Promise<SettleOutcome> {
  const parsed = rt.handler.parse(request);
  if (!parsed.ok) return failure(parsed.rejection, parsed.payer);
  const p = parsed.value;
  // Nobody may claim a payment's key, nor learn a recorded payment's outcome, without the payer's proven
  // signature (a permit's transferFrom does not carry it, so its recorded call alone proves nothing).
  const unsent = (e: unknown) => reject(Reason.unexpectedSettle, `settlement failed before anything was sent: ${nodeMessage(e)}`);
  const unsigned = await provePayerSignature(rt, cfg, p, deployment).catch(unsent);
  if (unsigned) return failure(unsigned, p.payer);
  if (deployment) {
    const undeployed = await deployPayerWallet(rt, cfg, request, p, deployment).catch(unsent);
    if (undeployed) return failure(undeployed, p.payer);
  }
  // A cooling-off contract payer starts no new attempt; one already sent is still answered from its record.
  const cooling = await contractPayerCoolingOff(rt, cfg, p).catch(() => undefined);
  return settleOnLedger(engineConfig(cfg), ledgerPayment(rt, cfg, request, p, cooling), new EvmSettlement(rt, cfg, p));
}

/** The outcome of a broadcast nobody came back for, if its entry is still at `version` (core's collectOnLedger). */
export async function collectPayment(rt: NetworkRuntime, cfg: SettleConfig, request: PaymentRequest, version: number): Promise<SettleOutcome | undefined> {
  const parsed = rt.handler.parse(request);
  if (!parsed.ok) return undefined;
  return collectOnLedger(engineConfig(cfg), ledgerPayment(rt, cfg, request, parsed.value), new EvmSettlement(rt, cfg, parsed.value), version);
}

function failure(rejection: Rejection, payer?: string): SettleOutcome {
  return { success: false, ...rejection, transaction: "", ...(payer ? { payer } : {}) };
}

