/** What an EVM payment's ledger record means: the call it recorded, whether its failure may be retried, and verify's reading of it. */
import { ledgerVerdict, Reason, type LedgerEntry, type LedgerVerdict, type PaymentRequest } from "@facilitator/core";
import { parseTransaction, type Hex } from "viem";
import type { NetworkRuntime, SettleConfig } from "./settle.ts";
import type { EvmPayment, TransferMethodHandler } from "./transfer-method.ts";

/** What verify should make of a payment's ledger record (the same reading as settle's). */
export function verdictFromLedger(rt: NetworkRuntime, cfg: SettleConfig, request: PaymentRequest, p: EvmPayment, entry: LedgerEntry | undefined): LedgerVerdict {
  return ledgerVerdict(entry, request, cfg.now(), {
    retriesFailure: !!entry && mayTryAgain(rt.handler, entry),
    isRecordedPayment: (e) => isRecordedCall(rt, p, e),
  });
}

/** True when `entry` recorded the very call this payment makes: same target, same calldata (payer and nonce alone are public once on chain). */
export function isRecordedCall(rt: NetworkRuntime, p: EvmPayment, entry: LedgerEntry): boolean {
  const raw = entry.rawTransaction as Hex | undefined;
  if (!raw) return false;
  const recorded = parseTransaction(raw);
  const call = rt.handler.settleCall(p);
  return recorded.to?.toLowerCase() === call.to.toLowerCase() && recorded.data?.toLowerCase() === call.data.toLowerCase();
}

/** Failures that moved no funds, for handlers whose next attempt is safe (the chain checks decide). */
const RETRYABLE_FAILURES: readonly string[] = [Reason.evmTransactionFailed, Reason.unexpectedSettle];

export function mayTryAgain(handler: TransferMethodHandler, entry: LedgerEntry): boolean {
  return entry.state === "failed" && !!handler.retriesFailedTransfer && RETRYABLE_FAILURES.includes(entry.reason ?? "");
}
