/**
 * The seam between the exact-EVM settlement engine and a token's way of moving funds. EIP-3009
 * (`transferWithAuthorization`, one transaction) is one handler; ERC-2612 (`permit` then `transferFrom`
 * from the same signer at consecutive nonces) is another: its on-chain check plans the prior calls.
 */
import type { LedgerEntry, NetworkInfo, PaymentRequest, Rejection, RuleResult, TransferMethod } from "@facilitator/core";
import type { Address, Hex, PublicClient, TransactionReceipt } from "viem";

export interface EvmChainContext {
  network: NetworkInfo;
  chainId: number;
  /** A batching client: requests issued in the same tick travel in one JSON-RPC batch. */
  client: PublicClient;
}

/** What the engine needs of any parsed payment. */
export interface EvmPayment {
  payer: Address;
  amount: bigint;
  /** The EIP-712 digest the payer signed, the signature, and whether it is the payer's own ECDSA one (else ERC-1271 decides). */
  digest: Hex;
  signature: Hex;
  ecdsaValid: boolean;
  /** Identifies the payment across requests, restarts and processes (the settlement ledger key). */
  ledgerKey: string;
}

export interface SettleCall {
  to: Address;
  data: Hex;
  value?: bigint;
}

/** A call to send with a gas limit from the chain's estimate (before the engine's margin). */
export interface PlannedCall extends SettleCall {
  gas: bigint;
}

export interface OnChainCheck {
  /** Estimated gas of `settleCall` (with `estimateGas`). */
  gas?: bigint;
  /**
   * Calls the same signer must send first, at the nonces just below `settleCall`'s (an ERC-2612
   * `permit` before its `transferFrom`). Sent once, never re-sent with new bytes.
   */
  prior?: PlannedCall[];
  /**
   * A transaction someone else signed (the payer's own `approve`), broadcast after the `prior` calls
   * are mined; the settlement call goes out only once it is mined. Recorded with the prior calls.
   */
  foreign?: Hex;
}

export interface TransferMethodHandler<P extends EvmPayment = EvmPayment> {
  readonly method: TransferMethod;
  /**
   * The signer that must send this payment's transactions (a permit's spender), or undefined for
   * any signer of the pool.
   */
  settler?(payment: P): Address | undefined;
  /**
   * True when a payment recorded as failed because its settlement transaction reverted or was refused
   * may be settled again by a later request asking the same (its binding): its funds never moved, and
   * the on-chain checks of the new attempt decide (ERC-2612: the allowance its mined permit left).
   */
  readonly retriesFailedTransfer?: boolean;
  /**
   * Until when (ms) the ledger must remember this payment even past its retention, because the chain
   * alone would not refuse a replay before then.
   */
  keepRecordUntil?(payment: P): number | undefined;
  /** `extra` of this network's `/supported` kinds. */
  supportedExtra(network: NetworkInfo): Record<string, unknown> | undefined;
  /** Shape, domain and binding rules; no I/O, no clock. A retry of the same payment passes them again. */
  parse(request: PaymentRequest): RuleResult<P>;
  /** Rules only verify applies (`upto`: verify is asked about the signed maximum, settle about the charge). */
  checkVerify?(payment: P): Rejection | undefined;
  /** True when the payment moves nothing (an `upto` charge of 0): settled without a transaction. */
  nothingToSend?(payment: P): boolean;
  /** The reason for a signature nobody proved (default: the EIP-3009 family's). */
  readonly signatureReason?: Rejection["reason"];
  /** Rules that depend on the time (validity windows, deadlines), at `nowSeconds`. */
  checkTime(payment: P, nowSeconds: bigint): Rejection | undefined;
  /**
   * Chain reads and a simulation as `settler`, in one round trip. With `estimateGas`, the simulation is
   * an `eth_estimateGas` of the settlement call and its result is returned as `gas`. `recorded` is this
   * payment's ledger entry when an earlier attempt of it was recorded (what it already sent).
   */
  checkOnChain(chain: EvmChainContext, payment: P, settler: Address, opts: { estimateGas: boolean; recorded?: Pick<LedgerEntry, "priorTransactions"> }): Promise<RuleResult<OnChainCheck>>;
  /** The transaction that moves the funds (after any `prior` calls of the on-chain check). */
  settleCall(payment: P): SettleCall;
  /** A successful receipt must show the payment's effect (e.g. the ERC-20 Transfer log). */
  checkReceipt(receipt: TransactionReceipt, payment: P): Rejection | undefined;
}
