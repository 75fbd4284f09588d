/**
 * What a settlement may cost us, decided before anything is signed: the operator's caps on gas and on
 * the fee per gas, and a cool-off for contract payers whose settlements reverted on chain.
 */
import { Reason, reject, type Rejection, type RuleResult } from "@facilitator/core";
import { capFees, feeCeiling, type FeeQuote } from "./fees.ts";
import type { NetworkRuntime, SettleConfig } from "./settle.ts";
import type { TxRequest } from "./signer-pool.ts";
import type { Hex } from "viem";
import type { EvmPayment, OnChainCheck, SettleCall } from "./transfer-method.ts";

/** What one broadcast sends: `prior` calls first, at the nonces just below `main`'s. */
export type TxPlan = { main: TxRequest; prior: TxRequest[]; fees: FeeQuote; foreign?: Hex };

/**
 * The transactions an on-chain check asks for, held under the operator's caps: a call needing more gas
 * than `maxGas`, or a chain asking more per gas than `maxFeePerGas`, is refused before anything is signed.
 */
export function capPlan(cfg: Pick<SettleConfig, "gasMarginPercent" | "maxGas" | "maxFeePerGas">, main: SettleCall, checked: OnChainCheck, quote: FeeQuote): RuleResult<TxPlan> {
  const calls = [...(checked.prior ?? []), { ...main, gas: checked.gas! }];
  const heavy = calls.find((c) => c.gas > cfg.maxGas);
  if (heavy) {
    return { ok: false, rejection: reject(Reason.evmGasLimitExceeded, `the settlement would need ${heavy.gas} gas, above this facilitator's cap of ${cfg.maxGas}`) };
  }
  const fees = capFees(quote, cfg.maxFeePerGas);
  if (!fees) {
    return { ok: false, rejection: reject(Reason.evmFeeCapExceeded, `the chain asks more per gas than this facilitator's cap of ${cfg.maxFeePerGas} wei (quote ${feeCeiling(quote)}); try again later`) };
  }
  const limit = (gas: bigint) => [(gas * cfg.gasMarginPercent) / 100n, cfg.maxGas].reduce((a, b) => (a < b ? a : b));
  const sized = calls.map((c) => ({ to: c.to, data: c.data, gas: limit(c.gas), ...(c.value ? { value: c.value } : {}) }));
  return { ok: true, value: { main: sized.at(-1)!, prior: sized.slice(0, -1), fees, ...(checked.foreign ? { foreign: checked.foreign } : {}) } };
}

/** The ledger key that remembers a contract payer's recent revert. */
const revertKey = (rt: NetworkRuntime, payer: string) => `evm:${rt.chain.chainId}:payer-reverted:${payer.toLowerCase()}`;

/** Why a payer whose signature only ERC-1271 proves is refused for now, if it is: its settlement reverted on chain lately. */
export async function contractPayerCoolingOff(rt: NetworkRuntime, cfg: SettleConfig, p: EvmPayment): Promise<Rejection | undefined> {
  if (p.ecdsaValid || cfg.contractPayerCooloffMs <= 0) return undefined;
  const marked = await cfg.ledger.get(revertKey(rt, p.payer));
  if (!marked?.keepUntil || marked.keepUntil <= cfg.now()) return undefined;
  return reject(
    Reason.evmPayerCoolingOff,
    `a settlement of contract wallet ${p.payer} reverted on chain after passing simulation; it is refused until ${new Date(marked.keepUntil).toISOString()}`,
  );
}

/**
 * Remembers that a contract payer's settlement reverted while the chain's checks still pass: the wallet
 * answered the simulation one way and the mined transaction another. A revert the chain explains (the
 * nonce used by a front-runner, the balance moved) marks nobody, or a stranger could lock a wallet out.
 * Best effort: a lost race means another settle marked it.
 */
export async function markContractPayerReverted(rt: NetworkRuntime, cfg: SettleConfig, p: EvmPayment, hash: string, wouldPassNow: () => Promise<boolean>): Promise<void> {
  if (p.ecdsaValid || cfg.contractPayerCooloffMs <= 0) return;
  if (!(await wouldPassNow())) return;
  const key = revertKey(rt, p.payer);
  const now = cfg.now();
  const seen = await cfg.ledger.get(key);
  const { reason, message } = reject(Reason.evmPayerCoolingOff, `settlement ${hash} reverted on chain`);
  await cfg.ledger.compareAndSet(
    { key, state: "failed", network: rt.network.caip2, payer: p.payer, reason, message, transaction: hash, updatedAt: now, keepUntil: now + cfg.contractPayerCooloffMs },
    seen?.version ?? 0,
  );
}

