/** Programs and limits of the x402 `exact` scheme on Solana (specs/schemes/exact/scheme_exact_svm.md). */
import { address } from "@solana/kit";

export const COMPUTE_BUDGET_PROGRAM = address("ComputeBudget111111111111111111111111111111");
export const TOKEN_PROGRAM = address("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA");
export const TOKEN_2022_PROGRAM = address("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb");
export const ASSOCIATED_TOKEN_PROGRAM = address("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL");
export const MEMO_PROGRAM = address("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr");
/** Assertion instructions that Phantom and Solflare add to the transactions they sign. */
export const LIGHTHOUSE_PROGRAM = address("L2TExMFKdjpN9kozasaurPirfHy9P8sbXoAN1qA3S95");

export const TOKEN_PROGRAMS: readonly string[] = [TOKEN_PROGRAM, TOKEN_2022_PROGRAM];

export const SET_COMPUTE_UNIT_LIMIT = 2;
export const SET_COMPUTE_UNIT_PRICE = 3;
export const TRANSFER_CHECKED = 12;

/** 5 lamports per compute unit: the spec's cap on what a client may make the fee payer pay. */
export const MAX_COMPUTE_UNIT_PRICE_MICROLAMPORTS = 5_000_000n;
/** The most compute units a Solana transaction can ask for at all. */
export const MAX_TRANSACTION_COMPUTE_UNITS = 1_400_000;
/**
 * Default cap on SetComputeUnitLimit. What clients ask today: `@x402/svm` 2.27 a fixed 20,000,
 * `x402@1.2.0` the units its own simulation consumed (a TransferChecked: about 6,500 on mainnet's
 * token program, far fewer under p-token). A memo costs a few thousand more, each Lighthouse
 * assertion a wallet adds about as much; 200,000 (Solana's own default per instruction) leaves
 * about ten times the fixed 20,000 and still bounds the priority fee a client can set.
 */
export const DEFAULT_MAX_COMPUTE_UNITS = 200_000;
/**
 * Default cap on the priority fee, units x price / 1e6 rounded up, in lamports. The official clients
 * pay 1 micro-lamport per unit: 20,000 x 1 rounds up to 1 lamport. 5,000 lamports is one signature's
 * base fee, so a settlement costs the fee payer at most 1.5 times a plain two-signature fee (10,000),
 * where 1.4M units at the 5 lamports/unit price cap cost 7,000,000; it still lets a client pay
 * 25,000 micro-lamports per unit at the 200,000-unit cap, or 250,000 at the official 20,000.
 */
export const DEFAULT_MAX_PRIORITY_FEE_LAMPORTS = 5_000;
export const MIN_INSTRUCTIONS = 3;
export const MAX_INSTRUCTIONS = 7;
