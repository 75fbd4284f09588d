/** Decoding wire transactions and messages, and the fee a node charges for them. */
import {
  getBase58Decoder,
  getCompiledTransactionMessageDecoder,
  getTransactionDecoder,
  type Address,
  type CompiledTransactionMessageWithLifetime,
  type LegacyCompiledTransactionMessage,
  type V0CompiledTransactionMessage,
} from "@solana/kit";

export const COMPUTE_BUDGET_PROGRAM = "ComputeBudget111111111111111111111111111111";
export const LAMPORTS_PER_SIGNATURE = 5000n;
const DEFAULT_UNITS_PER_INSTRUCTION = 200_000n;
const MAX_COMPUTE_UNITS = 1_400_000n;

/** Legacy and v0 messages: the versions this node executes (litesvm has no v1 transactions). */
export type CompiledMessage = (LegacyCompiledTransactionMessage | V0CompiledTransactionMessage) & CompiledTransactionMessageWithLifetime;

export interface WireTransaction {
  /** The first signature (the fee payer's), base58: the transaction's id. */
  signature: string;
  /** Every signature in message order, base58 (64 zero bytes where a signer has not signed). */
  signatures: string[];
  messageBytes: Uint8Array;
  message: CompiledMessage;
  blockhash: string;
}

const ZERO_SIGNATURE = new Uint8Array(64);

/** Throws if `bytes` is not a transaction. */
export function decodeWireTransaction(bytes: Uint8Array): WireTransaction {
  const tx = getTransactionDecoder().decode(bytes);
  const messageBytes = new Uint8Array(tx.messageBytes);
  const message = decodeMessage(messageBytes);
  const signers = message.staticAccounts.slice(0, message.header.numSignerAccounts);
  const signatures = signers.map((a: Address) => getBase58Decoder().decode(tx.signatures[a] ?? ZERO_SIGNATURE));
  if (signatures.length === 0) throw new Error("transaction has no signers");
  return { signature: signatures[0], signatures, messageBytes, message, blockhash: message.lifetimeToken };
}

export function decodeMessage(messageBytes: Uint8Array): CompiledMessage {
  const message = getCompiledTransactionMessageDecoder().decode(messageBytes);
  if (message.version !== "legacy" && message.version !== 0) throw new Error(`unsupported transaction version ${message.version}`);
  return message as CompiledMessage;
}

/** Base fee per signature plus the priority fee its compute-budget instructions ask for. */
export function feeForMessage(message: CompiledMessage): bigint {
  let unitLimit: bigint | undefined;
  let microLamportsPerUnit = 0n;
  let otherInstructions = 0n;
  for (const ix of message.instructions) {
    const data = ix.data ?? new Uint8Array();
    if (message.staticAccounts[ix.programAddressIndex] !== COMPUTE_BUDGET_PROGRAM) {
      otherInstructions++;
      continue;
    }
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    if (data[0] === 2 && data.length >= 5) unitLimit = BigInt(view.getUint32(1, true));
    if (data[0] === 3 && data.length >= 9) microLamportsPerUnit = view.getBigUint64(1, true);
  }
  const units = unitLimit ?? minBig(otherInstructions * DEFAULT_UNITS_PER_INSTRUCTION, MAX_COMPUTE_UNITS);
  const priority = (microLamportsPerUnit * units + 999_999n) / 1_000_000n;
  return LAMPORTS_PER_SIGNATURE * BigInt(message.header.numSignerAccounts) + priority;
}

const minBig = (a: bigint, b: bigint) => (a < b ? a : b);
