/** The seams between the protocol core and the chain packages. Types only. */
import type { ChainFamily, NetworkInfo } from "./networks.ts";
import type { PaymentRequest, Requirements } from "./request.ts";
import type { Rejection } from "./reasons.ts";
import type { PaymentBinding } from "./binding.ts";

export type VerifyOutcome = { isValid: true; payer: string } | ({ isValid: false; payer?: string } & Rejection);

export type SettleOutcome =
  | { success: true; payer: string; transaction: string; amount: bigint }
  | ({ success: false; payer?: string; transaction: string } & Rejection);

/** One payment scheme on one chain family (e.g. `exact` on EVM), serving the networks it was given. */
export interface PaymentMechanism {
  readonly scheme: string;
  readonly family: ChainFamily;
  readonly networks: readonly NetworkInfo[];
  /** `extra` for this network's `/supported` kinds (e.g. Solana's `feePayer`). */
  supportedExtra(network: NetworkInfo): Record<string, unknown> | undefined;
  /** Payment extensions it implements, for `/supported`'s `extensions`. */
  readonly extensions?: readonly string[];
  /** Addresses that sign settlements, for `/supported`'s `signers`. */
  signers(): string[];
  verify(request: PaymentRequest): Promise<VerifyOutcome>;
  settle(request: PaymentRequest): Promise<SettleOutcome>;
  /**
   * Records the outcome of this payment's recorded broadcast, if its ledger entry is still at
   * `version`: waits for it and re-sends its recorded bytes, and never signs anything new (no second
   * transfer after a revert, no fresh attempt after a failure). Undefined when there was nothing to
   * collect (the entry moved on, or is not a broadcast). For settlements nobody came back for.
   */
  collect(request: PaymentRequest, version: number): Promise<SettleOutcome | undefined>;
}

/**
 * Settlement ledger: the record that makes "one success per payment" hold across requests,
 * restarts and processes. Keys identify a payment (EVM: chain, token, payer, authorization nonce;
 * Solana: the transaction message). Every write is a compare-and-set on `version`.
 */
export type LedgerState =
  /** Someone holds the payment and has not broadcast yet (lease-bound, so a crash frees it). */
  | "claimed"
  /** A transaction was signed and recorded (hash and raw bytes) before it was sent; outcome unknown. */
  | "broadcast"
  | "success"
  | "failed";

export interface LedgerEntry {
  key: string;
  state: LedgerState;
  version: number;
  network: string;
  payer?: string;
  amount?: string;
  /** Transaction hash (EVM) or signature (Solana), known before the broadcast. */
  transaction?: string;
  /** The signed transaction, so an unconfirmed broadcast can be re-sent byte for byte, never re-signed. */
  rawTransaction?: string;
  /**
   * Transactions of the same signer at the nonces just below `transaction`'s that it depends on (an
   * ERC-2612 `permit` before its `transferFrom`), recorded with it before anything is sent, so a
   * reconcile can re-send them byte for byte too.
   */
  priorTransactions?: { transaction: string; rawTransaction: string; foreign?: boolean }[];
  /** Set once some caller was told `settlement_pending`: the next settle may reconcile. */
  pendingAnswered?: boolean;
  /**
   * A success the facilitator recorded by itself (collecting a broadcast nobody came back for): no
   * caller has been told yet, so the first settle of the payment after it gets the success answer.
   */
  successUnanswered?: boolean;
  reason?: string;
  message?: string;
  leaseUntil?: number;
  updatedAt: number;
  /**
   * A `success` or `failed` entry is kept at least until this time (ms), even past the ledger's
   * retention: set it when nothing but this record refuses the payment again before then (an ERC-2612
   * permit can be settled through an allowance already in place until its deadline).
   */
  keepUntil?: number;
  /** A `payment-identifier` alias: the ledger key of the payment that holds the id (payment-identifier.ts). */
  aliasOf?: string;
  /**
   * What the request that first claimed this payment asked (payee, amount, asset, network, scheme):
   * kept for as long as the entry, and every later request for the key must ask the same (binding.ts).
   */
  binding?: PaymentBinding;
  /**
   * The payment as it was asked to be settled, so the facilitator can collect the outcome of a
   * broadcast nobody came back for (see `storedRequest`). Dropped once the outcome is recorded.
   */
  request?: StoredRequest;
}

/**
 * A payment request as a ledger keeps it: plain JSON (the amount as a decimal string), without its
 * network's settings (an RPC URL can hold a key), which the registry supplies again.
 */
export type StoredRequest = Omit<PaymentRequest, "network" | "requirements"> & { requirements: Omit<Requirements, "amount"> & { amount: string } };

export function storedRequest(request: PaymentRequest): StoredRequest {
  const { network: _network, requirements, ...rest } = request;
  return { ...rest, requirements: { ...requirements, amount: requirements.amount.toString() } };
}

export function restoredRequest(stored: StoredRequest, network: NetworkInfo): PaymentRequest {
  return { ...stored, network, requirements: { ...stored.requirements, amount: BigInt(stored.requirements.amount) } };
}

export interface SettlementLedger {
  get(key: string): Promise<LedgerEntry | undefined>;
  /**
   * Writes `next` (with version + 1) if the stored entry's version equals `expectedVersion`,
   * or if there is none and `expectedVersion` is 0. Resolves once durable. Returns the stored
   * entry, or undefined when another writer got there first.
   */
  compareAndSet(next: Omit<LedgerEntry, "version">, expectedVersion: number): Promise<LedgerEntry | undefined>;
  /** Removes a `claimed` entry whose holder found the payment invalid before broadcasting anything. */
  release(key: string, expectedVersion: number): Promise<boolean>;
  /** Entries in `broadcast` state, for metrics and reconciliation. */
  countUnconfirmed(): Promise<number>;
  /**
   * Up to `limit` entries in `broadcast` state. Stores with an order list those after the key `after`
   * (the last one listed before), so repeated calls go round all of them; others list a random sample.
   */
  listUnconfirmed(limit: number, after?: string): Promise<LedgerEntry[]>;
  close(): Promise<void>;
}
