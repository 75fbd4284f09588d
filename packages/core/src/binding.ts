/**
 * A payment is bound to the request that first claimed it. Its ledger entry keeps what that request
 * asked (network, scheme, asset, payee, amount) and who asked (the API key's id, when keys are in use),
 * and every later request for the same ledger key must ask the same: otherwise a retry (after `failed`,
 * `settlement_pending` or a take-over) could send a payment someone else asked for to a payee of its
 * own choosing (an ERC-2612 permit does not sign the payee, and its calldata is public once on chain),
 * or another tenant could rebuild a pending payment from the public mempool and take its one success
 * answer. Pure: no I/O.
 */
import type { LedgerEntry } from "./mechanism.ts";
import type { PaymentRequest } from "./request.ts";
import { Reason, reject, type Rejection } from "./reasons.ts";

export interface PaymentBinding {
  network: string;
  scheme: string;
  asset: string;
  payTo: string;
  amount: string;
  /** The first caller's API key id; absent when it presented none (no API keys configured). */
  caller?: string;
}

/** The binding a request asks for. Addresses keep their case unless `caseless` (EVM hex; Solana base58 is case-sensitive). */
export function bindingOf(request: PaymentRequest): PaymentBinding {
  const caseless = request.network.family === "evm";
  const address = (a: string) => (caseless ? a.toLowerCase() : a);
  return {
    network: request.network.caip2,
    scheme: request.scheme,
    asset: address(request.requirements.asset),
    payTo: address(request.requirements.payTo),
    amount: request.requirements.amount.toString(),
    ...(request.caller ? { caller: request.caller } : {}),
  };
}

const FIELDS: readonly (keyof PaymentBinding)[] = ["network", "scheme", "asset", "payTo", "amount"];

/**
 * Undefined when `request` asks what `entry` was bound to (or the entry predates bindings), else the
 * refusal naming the first field that differs.
 */
export function checkBinding(entry: Pick<LedgerEntry, "binding">, request: PaymentRequest): Rejection | undefined {
  const bound = entry.binding;
  if (!bound) return undefined;
  const asked = bindingOf(request);
  const field = FIELDS.find((f) => bound[f] !== asked[f]);
  if (!field) {
    if (bound.caller === undefined || bound.caller === asked.caller) return undefined;
    return reject(Reason.paymentRequestMismatch, "this payment was first asked to be settled by another caller (API key); only that caller may settle it or learn its outcome");
  }
  return reject(
    Reason.paymentRequestMismatch,
    `this payment was first asked to be settled with ${field} ${bound[field]}; this request asks ${asked[field]}. A payment is settled only as first asked`,
  );
}
