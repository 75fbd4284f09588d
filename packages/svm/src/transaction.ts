/** Decoding an x402 Solana payload (`{transaction: base64}`) into what the rules look at. Pure. */
import {
  getBase64Encoder,
  getCompiledTransactionMessageDecoder,
  getTransactionDecoder,
  type Address,
  type SignatureBytes,
} from "@solana/kit";
import { Reason, reject, type Rejection } from "@facilitator/core";

export interface PaymentInstruction {
  programAddress: Address;
  accounts: Address[];
  data: Uint8Array;
}

export interface PaymentTransaction {
  /** `staticAccounts[0]`: the account that pays the fee, and must be one of the facilitator's. */
  feePayer: Address;
  /** The first `numSignerAccounts` static accounts, in order (the fee payer first). */
  signers: Address[];
  staticAccounts: Address[];
  instructions: PaymentInstruction[];
  blockhash: string;
  messageBytes: Uint8Array;
  /** Signatures by signer; null where the signer has not signed yet (the fee payer's, before we co-sign). */
  signatures: Record<Address, SignatureBytes | null>;
}

/** Decodes a base64 wire transaction; only v0 messages without address lookup tables pass. */
export function decodePaymentTransaction(base64: string): PaymentTransaction | Rejection {
  let bytes: Uint8Array;
  let tx: ReturnType<ReturnType<typeof getTransactionDecoder>["decode"]>;
  let message: ReturnType<ReturnType<typeof getCompiledTransactionMessageDecoder>["decode"]>;
  try {
    bytes = new Uint8Array(getBase64Encoder().encode(base64));
    tx = getTransactionDecoder().decode(bytes);
    message = getCompiledTransactionMessageDecoder().decode(tx.messageBytes);
  } catch (e) {
    return reject(Reason.invalidPayload, `payload.transaction is not a base64 Solana transaction: ${(e as Error).message}`);
  }
  if (message.version !== 0) {
    return reject(Reason.svmVersion, `the transaction must be a v0 transaction, got version ${message.version}`);
  }
  if ((message.addressTableLookups ?? []).length > 0) {
    // Accounts loaded from lookup tables cannot be checked without fetching the tables; no x402 client uses them.
    return reject(Reason.svmInstructions, "address lookup tables are not accepted in x402 payment transactions");
  }
  const staticAccounts = message.staticAccounts;
  const at = (index: number): Address => {
    const a = staticAccounts[index];
    if (a === undefined) throw new RangeError(`account index ${index} is out of range`);
    return a;
  };
  let instructions: PaymentInstruction[];
  try {
    instructions = message.instructions.map((ix) => ({
      programAddress: at(ix.programAddressIndex),
      accounts: (ix.accountIndices ?? []).map(at),
      data: new Uint8Array(ix.data ?? []),
    }));
  } catch (e) {
    return reject(Reason.invalidPayload, `malformed transaction: ${(e as Error).message}`);
  }
  if (staticAccounts.length === 0 || message.header.numSignerAccounts === 0) {
    return reject(Reason.invalidPayload, "malformed transaction: no fee payer");
  }
  return {
    feePayer: staticAccounts[0],
    signers: staticAccounts.slice(0, message.header.numSignerAccounts),
    staticAccounts,
    instructions,
    blockhash: message.lifetimeToken,
    messageBytes: new Uint8Array(tx.messageBytes),
    signatures: { ...tx.signatures },
  };
}

export const isRejection = (x: object): x is Rejection => "reason" in x && "message" in x;
