/**
 * The `exact` scheme's transaction rules for Solana. Pure functions: no I/O, no clock. Addresses
 * that need hashing (associated token accounts) are derived by the caller and passed in.
 */
import { acceptedAsset, acceptedAssetAddresses, Reason, reject, type NetworkInfo, type Rejection } from "@facilitator/core";
import {
  ASSOCIATED_TOKEN_PROGRAM,
  COMPUTE_BUDGET_PROGRAM,
  LIGHTHOUSE_PROGRAM,
  MAX_COMPUTE_UNIT_PRICE_MICROLAMPORTS,
  MAX_INSTRUCTIONS,
  MEMO_PROGRAM,
  MIN_INSTRUCTIONS,
  SET_COMPUTE_UNIT_LIMIT,
  SET_COMPUTE_UNIT_PRICE,
  TOKEN_PROGRAMS,
  TRANSFER_CHECKED,
} from "./constants.ts";
import type { PaymentInstruction, PaymentTransaction } from "./transaction.ts";

export interface PaymentExpectations {
  /** The facilitator's fee-payer addresses. */
  feePayers: ReadonlySet<string>;
  /** `requirements.extra.feePayer`, when the resource server named one. */
  requiredFeePayer?: string;
  /** The mint the requirements ask for. */
  asset: string;
  amount: bigint;
  /** The associated token account of `payTo` for `asset`, by token program. */
  destinations: Readonly<Record<string, string>>;
  /** The fee payer's own associated token accounts for `asset`, by token program: never a valid source. */
  feePayerTokenAccounts: Readonly<Record<string, string>>;
  /** `requirements.extra.memo`, when set. */
  memo?: string;
}

export interface TransferDetails {
  tokenProgram: string;
  source: string;
  mint: string;
  destination: string;
  authority: string;
  amount: bigint;
  decimals: number;
}

/** What the facilitator is willing to pay for: a bound on every request, whatever it asks. */
export interface PaymentPolicy {
  /** The network the payment is on: its accepted assets (the configured mint and `extraAssets`). */
  network: NetworkInfo;
  /** Most compute units SetComputeUnitLimit may ask for. */
  maxComputeUnits: number;
  /** Most priority fee (units x price / 1e6, rounded up) the fee payer may be made to pay, in lamports. */
  maxPriorityFeeLamports: number;
}

/** Index of the TransferChecked instruction in a valid payment. */
export const TRANSFER_INDEX = 2;

/** Every rule, in order; the first failure is the answer. */
export function checkPaymentRules(tx: PaymentTransaction, expect: PaymentExpectations): TransferDetails | Rejection {
  const early = checkFeePayer(tx, expect) ?? checkInstructionCount(tx) ?? checkNoCreateAta(tx);
  if (early) return early;
  const transfer = parseTransferChecked(tx.instructions[TRANSFER_INDEX]);
  if ("reason" in transfer) return transfer;
  return (
    checkFeePayerNotTransferring(tx.feePayer, transfer, expect) ??
    checkFeePayerInNoInstruction(tx) ??
    checkSigners(tx, transfer) ??
    checkComputeUnitLimit(tx.instructions[0]) ??
    checkComputeUnitPrice(tx.instructions[1]) ??
    checkOptionalInstructions(tx.instructions.slice(TRANSFER_INDEX + 1)) ??
    checkTransferMatches(transfer, expect) ??
    checkMemo(tx.instructions, expect.memo) ??
    transfer
  );
}

export function checkFeePayer(tx: Pick<PaymentTransaction, "feePayer">, expect: Pick<PaymentExpectations, "feePayers" | "requiredFeePayer">): Rejection | undefined {
  if (!expect.feePayers.has(tx.feePayer)) {
    return reject(Reason.svmFeePayerMismatch, `the fee payer ${tx.feePayer} is not one of this facilitator's fee payers`);
  }
  if (expect.requiredFeePayer !== undefined && expect.requiredFeePayer !== tx.feePayer) {
    return reject(Reason.svmFeePayerMismatch, `the fee payer ${tx.feePayer} differs from requirements.extra.feePayer ${expect.requiredFeePayer}`);
  }
  return undefined;
}

export function checkInstructionCount(tx: Pick<PaymentTransaction, "instructions">): Rejection | undefined {
  const n = tx.instructions.length;
  if (n < MIN_INSTRUCTIONS || n > MAX_INSTRUCTIONS) {
    return reject(Reason.svmInstructionsLength, `the transaction has ${n} instructions; ${MIN_INSTRUCTIONS} to ${MAX_INSTRUCTIONS} are allowed`);
  }
  return undefined;
}

/** The payee's token account must exist already: creating it would spend the fee payer's SOL on rent. */
export function checkNoCreateAta(tx: Pick<PaymentTransaction, "instructions">): Rejection | undefined {
  const i = tx.instructions.findIndex((ix) => ix.programAddress === ASSOCIATED_TOKEN_PROGRAM);
  if (i >= 0) return reject(Reason.svmCreateAta, `instruction ${i} creates an associated token account; the payee's token account must already exist`);
  return undefined;
}

/** Instruction 2 must be SPL Token or Token-2022 `TransferChecked` with exactly its four accounts. */
export function parseTransferChecked(ix: PaymentInstruction): TransferDetails | Rejection {
  if (!TOKEN_PROGRAMS.includes(ix.programAddress) || ix.data[0] !== TRANSFER_CHECKED || ix.data.length !== 10) {
    return reject(Reason.svmInstructions, `instruction ${TRANSFER_INDEX} must be a TransferChecked of the SPL Token or Token-2022 program`);
  }
  if (ix.accounts.length !== 4) {
    return reject(Reason.svmInstructions, `TransferChecked must name exactly source, mint, destination and authority (got ${ix.accounts.length} accounts)`);
  }
  const view = new DataView(ix.data.buffer, ix.data.byteOffset, ix.data.byteLength);
  const [source, mint, destination, authority] = ix.accounts;
  return { tokenProgram: ix.programAddress, source, mint, destination, authority, amount: view.getBigUint64(1, true), decimals: ix.data[9] };
}

export function checkFeePayerNotTransferring(
  feePayer: string,
  transfer: TransferDetails,
  expect: Pick<PaymentExpectations, "feePayerTokenAccounts">,
): Rejection | undefined {
  if (transfer.authority === feePayer) {
    return reject(Reason.svmFeePayerTransferring, "the facilitator's fee payer must not be the transfer authority");
  }
  if (transfer.source === feePayer || transfer.source === expect.feePayerTokenAccounts[transfer.tokenProgram]) {
    return reject(Reason.svmFeePayerTransferring, "the transfer must not draw from the facilitator's fee payer or its token account");
  }
  return undefined;
}

/** Explicit scan: the fee payer signs only to pay the fee, so it may appear in no instruction at all. */
export function checkFeePayerInNoInstruction(tx: Pick<PaymentTransaction, "feePayer" | "instructions">): Rejection | undefined {
  for (const [i, ix] of tx.instructions.entries()) {
    if (ix.programAddress === tx.feePayer || ix.accounts.includes(tx.feePayer)) {
      return reject(Reason.svmFeePayerInInstruction, `instruction ${i} names the facilitator's fee payer among its accounts`);
    }
  }
  return undefined;
}

/** Exactly two signers: the fee payer (slot 0) and the transfer authority (the payer). */
export function checkSigners(tx: Pick<PaymentTransaction, "signers">, transfer: Pick<TransferDetails, "authority">): Rejection | undefined {
  if (tx.signers.length !== 2 || tx.signers[1] !== transfer.authority) {
    return reject(
      Reason.svmSignature,
      `the transaction must have exactly two signers, the fee payer and the transfer authority ${transfer.authority}; it has ${tx.signers.join(", ")}`,
    );
  }
  return undefined;
}

export function checkComputeUnitLimit(ix: PaymentInstruction): Rejection | undefined {
  if (ix.programAddress !== COMPUTE_BUDGET_PROGRAM || ix.data[0] !== SET_COMPUTE_UNIT_LIMIT || ix.data.length !== 5 || ix.accounts.length !== 0) {
    return reject(Reason.svmComputeLimit, "instruction 0 must be ComputeBudget SetComputeUnitLimit");
  }
  return undefined;
}

export function checkComputeUnitPrice(ix: PaymentInstruction): Rejection | undefined {
  if (ix.programAddress !== COMPUTE_BUDGET_PROGRAM || ix.data[0] !== SET_COMPUTE_UNIT_PRICE || ix.data.length !== 9 || ix.accounts.length !== 0) {
    return reject(Reason.svmInstructions, "instruction 1 must be ComputeBudget SetComputeUnitPrice");
  }
  const price = new DataView(ix.data.buffer, ix.data.byteOffset, ix.data.byteLength).getBigUint64(1, true);
  if (price > MAX_COMPUTE_UNIT_PRICE_MICROLAMPORTS) {
    return reject(Reason.svmComputePrice, `compute unit price ${price} micro-lamports exceeds the limit of ${MAX_COMPUTE_UNIT_PRICE_MICROLAMPORTS}`);
  }
  return undefined;
}

/** After the transfer, only Memo and Lighthouse instructions. */
export function checkOptionalInstructions(rest: readonly PaymentInstruction[]): Rejection | undefined {
  for (const [k, ix] of rest.entries()) {
    if (ix.programAddress !== MEMO_PROGRAM && ix.programAddress !== LIGHTHOUSE_PROGRAM) {
      return reject(Reason.svmInstructions, `instruction ${TRANSFER_INDEX + 1 + k} calls ${ix.programAddress}; only Memo and Lighthouse instructions may follow the transfer`);
    }
  }
  return undefined;
}

export function checkTransferMatches(transfer: TransferDetails, expect: Pick<PaymentExpectations, "asset" | "amount" | "destinations">): Rejection | undefined {
  if (transfer.mint !== expect.asset) {
    return reject(Reason.svmMintMismatch, `the transfer moves mint ${transfer.mint}, the requirements ask for ${expect.asset}`);
  }
  const destination = expect.destinations[transfer.tokenProgram];
  if (transfer.destination !== destination) {
    return reject(Reason.svmRecipientMismatch, `the transfer pays ${transfer.destination}, not the payee's token account ${destination}`);
  }
  if (transfer.amount !== expect.amount) {
    return reject(Reason.svmAmountMismatch, `the transfer moves ${transfer.amount} base units, the requirements ask for exactly ${expect.amount}`);
  }
  return undefined;
}

/** With `extra.memo` set, exactly one Memo instruction, carrying exactly that text. */
export function checkMemo(instructions: readonly PaymentInstruction[], memo: string | undefined): Rejection | undefined {
  if (memo === undefined) return undefined;
  const memos = instructions.filter((ix) => ix.programAddress === MEMO_PROGRAM);
  if (memos.length !== 1) {
    return reject(Reason.svmMemoMismatch, `requirements.extra.memo is set, so exactly one Memo instruction is required (found ${memos.length})`);
  }
  const text = new TextDecoder("utf-8", { fatal: false }).decode(memos[0].data);
  if (text !== memo) return reject(Reason.svmMemoMismatch, `the memo ${JSON.stringify(text)} differs from requirements.extra.memo ${JSON.stringify(memo)}`);
  return undefined;
}

/**
 * The facilitator's own limits, checked on a payment that passed `checkPaymentRules` and before
 * anything is signed or sent: the requirements' mint is one this network accepts, the amount is
 * positive, and the compute budget stays within both caps. Without them, a zero-amount transfer of
 * any mint asking 1.4M units at the price cap costs the fee payer about 700 times a normal fee.
 */
export function checkPaymentPolicy(
  tx: Pick<PaymentTransaction, "instructions">,
  requirements: { asset: string; amount: bigint },
  policy: PaymentPolicy,
): Rejection | undefined {
  return (
    checkAssetAccepted(requirements.asset, policy.network) ??
    checkAmountPositive(requirements.amount) ??
    checkComputeBudgetCaps(tx, policy)
  );
}

export function checkAssetAccepted(asset: string, network: NetworkInfo): Rejection | undefined {
  if (acceptedAsset(network, asset)) return undefined;
  return reject(Reason.assetNotAllowed, `mint ${asset} is not accepted on ${network.name} (accepted: ${acceptedAssetAddresses(network).join(", ")})`);
}

export function checkAmountPositive(amount: bigint): Rejection | undefined {
  return amount > 0n ? undefined : reject(Reason.amountNotPositive, `the amount must be positive, the requirements ask for ${amount}`);
}

/** The compute-unit limit and price of a payment whose first two instructions passed their shape checks. */
export function computeBudgetOf(tx: Pick<PaymentTransaction, "instructions">): { units: number; microLamportsPerUnit: bigint } {
  const [limit, price] = tx.instructions;
  return {
    units: new DataView(limit.data.buffer, limit.data.byteOffset, limit.data.byteLength).getUint32(1, true),
    microLamportsPerUnit: new DataView(price.data.buffer, price.data.byteOffset, price.data.byteLength).getBigUint64(1, true),
  };
}

/** The priority fee in lamports, as the runtime charges it: on the units asked for, rounded up. */
export function priorityFeeLamports(units: number, microLamportsPerUnit: bigint): bigint {
  return (BigInt(units) * microLamportsPerUnit + 999_999n) / 1_000_000n;
}

export function checkComputeBudgetCaps(
  tx: Pick<PaymentTransaction, "instructions">,
  caps: Pick<PaymentPolicy, "maxComputeUnits" | "maxPriorityFeeLamports">,
): Rejection | undefined {
  const { units, microLamportsPerUnit } = computeBudgetOf(tx);
  if (units > caps.maxComputeUnits) {
    return reject(Reason.svmComputeUnitsTooHigh, `SetComputeUnitLimit asks for ${units} compute units; this facilitator pays for at most ${caps.maxComputeUnits}`);
  }
  const fee = priorityFeeLamports(units, microLamportsPerUnit);
  if (fee > BigInt(caps.maxPriorityFeeLamports)) {
    return reject(
      Reason.svmPriorityFeeTooHigh,
      `${units} units at ${microLamportsPerUnit} micro-lamports make a priority fee of ${fee} lamports; this facilitator pays at most ${caps.maxPriorityFeeLamports}`,
    );
  }
  return undefined;
}
