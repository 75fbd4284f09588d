/** Fee-payer keys, the payer's signature check, and co-signing. Keys stay non-extractable CryptoKeys. */
import { createPublicKey, verify, type KeyObject } from "node:crypto";
import {
  createKeyPairFromBytes,
  createKeyPairFromPrivateKeyBytes,
  getAddressFromPublicKey,
  getBase58Encoder,
  getBase64EncodedWireTransaction,
  signBytes,
  type Address,
  type SignatureBytes,
  type Transaction,
  type TransactionMessageBytes,
} from "@solana/kit";
import { Reason, reject, type Rejection } from "@facilitator/core";
import { addressBytes } from "./base58.ts";
import { BoundedCache } from "./cache.ts";
import type { PaymentTransaction } from "./transaction.ts";
import type { TransferDetails } from "./rules.ts";

export interface FeePayerKey {
  address: Address;
  keyPair: CryptoKeyPair;
}

/** A secret as `SVM_PRIVATE_KEY` holds it: base58 of 64 bytes (seed + public key) or of the 32-byte seed; or the raw bytes. */
export type SecretKeyInput = string | Uint8Array;

export async function loadFeePayerKey(secret: SecretKeyInput): Promise<FeePayerKey> {
  let bytes: Uint8Array;
  try {
    bytes = typeof secret === "string" ? new Uint8Array(getBase58Encoder().encode(secret.trim())) : secret;
  } catch {
    throw new Error("a Solana fee-payer secret key is not valid base58");
  }
  // Never echo the secret itself in an error.
  if (bytes.length !== 64 && bytes.length !== 32) throw new Error(`a Solana fee-payer secret key must be 32 or 64 bytes, got ${bytes.length}`);
  const keyPair = bytes.length === 64 ? await createKeyPairFromBytes(bytes) : await createKeyPairFromPrivateKeyBytes(bytes);
  return { address: await getAddressFromPublicKey(keyPair.publicKey), keyPair };
}

/** The transfer authority must have signed the exact message with its ed25519 key. */
export function checkPayerSignature(tx: PaymentTransaction, transfer: TransferDetails): Rejection | undefined {
  const signature = tx.signatures[transfer.authority as Address];
  if (!signature) return reject(Reason.svmSignature, `the transaction is not signed by the payer ${transfer.authority}`);
  let valid: boolean;
  try {
    const key = payerPublicKey(transfer.authority);
    valid = key !== undefined && verify(null, tx.messageBytes, key, signature);
  } catch {
    valid = false; // not an ed25519 public key at all
  }
  if (!valid) {
    return reject(Reason.svmSignature, `the payer's signature does not verify for ${transfer.authority}`);
  }
  return undefined;
}

/** DER head of an Ed25519 SubjectPublicKeyInfo; the 32 key bytes follow it. */
const ED25519_SPKI_HEAD = Buffer.from("302a300506032b6570032100", "hex");

/**
 * Payers pay again and again: their imported keys are kept, so a check is one synchronous
 * node:crypto verify (about 0.15 ms) instead of a WebCrypto import and an async verify job (0.35 ms).
 */
const payerKeys = new BoundedCache<string, KeyObject>(10_000);

function payerPublicKey(address: string): KeyObject | undefined {
  let key = payerKeys.get(address);
  if (!key) {
    const bytes = addressBytes(address);
    if (!bytes) return undefined;
    key = createPublicKey({ key: Buffer.concat([ED25519_SPKI_HEAD, bytes]), format: "der", type: "spki" });
    payerKeys.set(address, key);
  }
  return key;
}

/** Adds the fee payer's signature; returns it (the transaction id, base58 via kit) and the signed wire form. */
export async function coSign(tx: PaymentTransaction, key: FeePayerKey): Promise<{ signature: SignatureBytes; wireBase64: string }> {
  const signature = (await signBytes(key.keyPair.privateKey, tx.messageBytes)) as SignatureBytes;
  const signed = {
    messageBytes: tx.messageBytes as unknown as TransactionMessageBytes,
    signatures: { ...tx.signatures, [key.address]: signature },
  } as unknown as Transaction;
  return { signature, wireBase64: getBase64EncodedWireTransaction(signed) };
}
