/** Maps internal outcomes back into the caller's protocol version. */
import type { SettleOutcome, VerifyOutcome } from "./mechanism.ts";
import { reasonForVersion } from "./reasons.ts";
import type { X402Version } from "./request.ts";

export interface VerifyResponse {
  isValid: boolean;
  invalidReason?: string;
  invalidMessage?: string;
  payer?: string;
}

export interface SettleResponse {
  success: boolean;
  errorReason?: string;
  errorMessage?: string;
  payer?: string;
  transaction: string;
  network: string;
  amount?: string;
  extensions?: Record<string, unknown>;
}

export function toVerifyResponse(o: VerifyOutcome, version: X402Version): VerifyResponse {
  if (o.isValid) return { isValid: true, payer: o.payer };
  return { isValid: false, invalidReason: reasonForVersion(o.reason, version), invalidMessage: o.message, ...(o.payer ? { payer: o.payer } : {}) };
}

export function toSettleResponse(o: SettleOutcome, version: X402Version, network: string): SettleResponse {
  if (o.success) return { success: true, payer: o.payer, transaction: o.transaction, network, amount: o.amount.toString() };
  return {
    success: false,
    errorReason: reasonForVersion(o.reason, version),
    errorMessage: o.message,
    ...(o.payer ? { payer: o.payer } : {}),
    transaction: o.transaction,
    network,
  };
}
