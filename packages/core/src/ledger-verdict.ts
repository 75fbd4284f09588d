/** What verify reads in a payment's ledger record: the same reading as the settlement engine's (settlement.ts). */
import { checkBinding } from "./binding.ts";
import type { LedgerEntry } from "./mechanism.ts";
import { Reason, reject, type Rejection } from "./reasons.ts";
import type { PaymentRequest } from "./request.ts";
import { recordedRejection } from "./settlement.ts";

/** What a payment's ledger record says to verify, read the way settle reads it. */
export type LedgerVerdict =
  /** No record, or one a new attempt may take over: the chain decides. */
  | { kind: "chain decides" }
  /** This very payment was sent and its settle will reconcile (or answer) it: valid whatever the chain shows now. */
  | { kind: "settle will answer" }
  | { kind: "refused"; rejection: Rejection };

export interface VerdictOptions {
  /** The chain may try a failed payment again (then the chain decides). */
  retriesFailure?: boolean;
  /** As `ChainAdapter.isRecordedPayment`. Default: true. */
  isRecordedPayment?: (entry: LedgerEntry) => boolean;
}

/**
 * What verify should make of a payment's ledger record. A payment answered `settlement_pending` (or
 * left by a dead holder) is the official clients' retry path: their middleware verifies before it
 * settles, so verify must let the very payment that was recorded through, or its one success could
 * only ever be collected in the background.
 */
export function ledgerVerdict(entry: LedgerEntry | undefined, request: PaymentRequest, now: number, opts: VerdictOptions = {}): LedgerVerdict {
  if (!entry) return { kind: "chain decides" };
  const mismatch = checkBinding(entry, request);
  if (mismatch) return { kind: "refused", rejection: mismatch };
  const leaseLive = (entry.leaseUntil ?? 0) > now;
  const recorded = () => opts.isRecordedPayment?.(entry) ?? true;
  const refused = (rejection: Rejection): LedgerVerdict => ({ kind: "refused", rejection });
  switch (entry.state) {
    case "claimed":
      // A dead claim sent nothing: a new attempt takes it over.
      return leaseLive ? refused(reject(Reason.duplicateSettlement, "this payment is already being settled")) : { kind: "chain decides" };
    case "broadcast":
      if ((entry.pendingAnswered || !leaseLive) && recorded()) return { kind: "settle will answer" };
      return refused(reject(Reason.duplicateSettlement, `this payment is already being settled (transaction ${entry.transaction})`));
    case "success":
      if (entry.successUnanswered && recorded()) return { kind: "settle will answer" };
      return refused(reject(Reason.duplicateSettlement, `this payment was already settled in transaction ${entry.transaction}`));
    case "failed":
      return opts.retriesFailure ? { kind: "chain decides" } : refused(recordedRejection(entry));
  }
}
