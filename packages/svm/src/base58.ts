/**
 * Base58 for Solana addresses through bs58 (byte-wise arithmetic). @solana/kit's codec goes through
 * BigInt: about 10 µs per 32-byte key to text and 25 µs back, on every account key of every request;
 * bs58 takes about 3 µs either way. Both write the one canonical form (a leading zero byte as "1"),
 * so the strings are the ones kit would give.
 */
import bs58 from "bs58";
import type { Address } from "@solana/kit";

/** The address of 32 key bytes (also the base58 text of a 32-byte blockhash). */
export function addressFromBytes(bytes: Uint8Array): Address {
  return bs58.encode(bytes) as Address;
}

/** The 32 bytes an address names, or undefined where it is not an address (as kit's `isAddress` decides). */
export function addressBytes(putative: string): Uint8Array | undefined {
  // 32 zero bytes are 32 characters, 32 bytes of 255 are 44: nothing else can be 32 bytes.
  if (putative.length < 32 || putative.length > 44) return undefined;
  const bytes = bs58.decodeUnsafe(putative);
  return bytes?.length === 32 ? bytes : undefined;
}

export function isSolanaAddress(putative: string): putative is Address {
  return addressBytes(putative) !== undefined;
}
