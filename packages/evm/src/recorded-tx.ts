/**
 * A signed transaction recorded by its caller before it is sent, with what replacing it takes. Plain
 * JSON (amounts as decimal strings) so it is stored as is; stored records outlive upgrades, so fields
 * are only ever added, and optional.
 */
import type { Address, Hex, TransactionReceipt } from "viem";
import type { FeeQuote } from "./fees.ts";
import type { SignedTx } from "./signer-pool.ts";

/** What a transaction pays per gas. */
export type TxFees = { maxFeePerGas: string; maxPriorityFeePerGas: string } | { gasPrice: string };

export interface RecordedTx extends SignedTx {
  from: Address;
  /** Gas limit, fees and signing time: what a replacement needs (absent on records older than replacement). */
  gas?: string;
  fees?: TxFees;
  signedAt?: number;
  /** Earlier transactions at this nonce that this one replaced; any of them may be the one mined. */
  replaced?: Hex[];
}

export type TxOutcome =
  | { state: "mined"; receipt: TransactionReceipt }
  | { state: "pending" }
  /** The nonce was consumed by another transaction: this one can never be mined. */
  | { state: "dropped" };

export function txFeesOf(quote: FeeQuote): TxFees {
  return quote.type === "legacy"
    ? { gasPrice: quote.gasPrice.toString() }
    : { maxFeePerGas: quote.maxFeePerGas.toString(), maxPriorityFeePerGas: quote.maxPriorityFeePerGas.toString() };
}

export function feeQuoteOf(fees: TxFees): FeeQuote {
  return "gasPrice" in fees
    ? { type: "legacy", gasPrice: BigInt(fees.gasPrice) }
    : { type: "eip1559", maxFeePerGas: BigInt(fees.maxFeePerGas), maxPriorityFeePerGas: BigInt(fees.maxPriorityFeePerGas) };
}
