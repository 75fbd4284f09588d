/**
 * The `payment-identifier` extension (`@x402/extensions`): a client names a payment with an id, so that
 * a retry signed afresh (a new nonce, a new signature) is still the same payment. The engine keeps one
 * alias entry per (network, payer, id) in the settlement ledger, pointing at the ledger key of the
 * first payment that carried the id: a second payment with the same id and payer is answered from the
 * first one's record and never settled. The alias never moves to another payment (two writes to two
 * keys cannot be one atomic step, and a moving alias could let two payments through), so an id whose
 * payment failed stays spent: a client pays again under a new id. An id is remembered as long as the
 * ledger keeps finished entries (its retention).
 */
import { bindingOf, checkBinding } from "./binding.ts";
import type { LedgerEntry, SettleOutcome, SettlementLedger } from "./mechanism.ts";
import { Reason, reject, type Rejection, type RuleResult } from "./reasons.ts";
import type { PaymentRequest } from "./request.ts";

export const PAYMENT_IDENTIFIER = "payment-identifier";

/** The spec's id: 16 to 128 characters of letters, digits, `-` and `_`. */
const ID_PATTERN = /^[A-Za-z0-9_-]{16,128}$/;

/** The id a request's payment carries (undefined when none), or why the one it carries is refused. */
export function paymentIdentifierOf(request: PaymentRequest): RuleResult<string | undefined> {
  const ext = request.extensions?.[PAYMENT_IDENTIFIER];
  if (ext === undefined) return { ok: true, value: undefined };
  const id = (ext as { info?: { id?: unknown } } | null)?.info?.id;
  if (id === undefined) return { ok: true, value: undefined }; // declared by the server, no id given
  if (typeof id !== "string" || !ID_PATTERN.test(id)) {
    return { ok: false, rejection: reject(Reason.invalidPaymentIdentifier, "payment-identifier info.id must be 16 to 128 characters of letters, digits, '-' and '_'") };
  }
  return { ok: true, value: id };
}

/** The alias entry's key: the id counts per network and payer (another payer's id is another payment). */
export function paymentIdentifierKey(network: string, payer: string, id: string): string {
  return `pid:${network}:${payer.toLowerCase()}:${id}`;
}

export interface IdentifiedPayment {
  /** Ledger key of the payment this request carries. */
  key: string;
  payer: string;
  id: string;
  request: PaymentRequest;
  /** False when no new attempt of this payment may start: a free id is then left free. */
  mayClaim: boolean;
}

const MAX_READS = 5;

/**
 * Points a free id at this payment and returns undefined, so the settle goes on (as it does for a retry
 * of the payment that holds the id); otherwise returns the answer from the payment that holds it.
 */
export async function claimPaymentIdentifier(ledger: SettlementLedger, p: IdentifiedPayment, now: () => number): Promise<SettleOutcome | undefined> {
  const key = paymentIdentifierKey(p.request.network.caip2, p.payer, p.id);
  for (let read = 0; read < MAX_READS; read++) {
    const alias = await ledger.get(key);
    if (alias) {
      const mismatch = checkBinding(alias, p.request);
      if (mismatch) return refused(mismatch, p.payer);
      if (alias.aliasOf === p.key) return undefined;
      return answerFromHolder(alias.aliasOf ? await ledger.get(alias.aliasOf) : undefined, p);
    }
    if (!p.mayClaim) return undefined;
    const written = await ledger.compareAndSet(
      { key, state: "success", network: p.request.network.caip2, payer: p.payer, aliasOf: p.key, binding: bindingOf(p.request), updatedAt: now() },
      0,
    );
    if (written) return undefined;
  }
  return refused(reject(Reason.duplicateSettlement, `another request is settling a payment with identifier ${p.id} right now`), p.payer);
}

/** What the payment holding the id answers another payment that carries it. */
function answerFromHolder(holder: LedgerEntry | undefined, p: IdentifiedPayment): SettleOutcome {
  const tx = holder?.transaction ?? "";
  const said = `payment identifier ${p.id} belongs to another payment of ${p.payer}`;
  switch (holder?.state) {
    case "success":
      return refused(reject(Reason.duplicateSettlement, `${said}, settled in transaction ${tx}`), p.payer, tx);
    case "broadcast":
      return refused(reject(Reason.duplicateSettlement, `${said}, sent in transaction ${tx}; settle that payment to learn its outcome`), p.payer, tx);
    case "failed":
      return refused(reject(Reason.duplicateSettlement, `${said}, whose settlement failed (${holder.reason}); pay again under a new identifier`), p.payer, tx);
    default:
      return refused(reject(Reason.duplicateSettlement, `${said}, which is being settled or was refused before anything was sent; pay again under a new identifier`), p.payer);
  }
}

function refused(rejection: Rejection, payer: string, transaction = ""): SettleOutcome {
  return { success: false, ...rejection, transaction, payer };
}
