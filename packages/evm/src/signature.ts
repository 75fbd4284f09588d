/**
 * ECDSA recovery with the native libsecp256k1 binding (`secp256k1`), about 35x faster than a pure JS
 * curve; viem computes the EIP-712 digest. Pure: no I/O.
 */
import secp256k1 from "secp256k1";
import { getAddress, hashTypedData, hexToBytes, keccak256, type Address, type Hex, type TypedData, type TypedDataDefinition } from "viem";

/** Half the secp256k1 group order: a signature with a larger `s` is the malleable twin (EIP-2). */
const HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n;

export interface SplitSignature {
  r: Hex;
  s: Hex;
  /** 27 or 28. */
  v: 27 | 28;
}

/** Splits a 65-byte `r || s || v` signature (v as 0/1 or 27/28); undefined for any other shape. */
export function splitSignature(signature: Hex): SplitSignature | undefined {
  if (!/^0x[0-9a-fA-F]{130}$/.test(signature)) return undefined;
  const vByte = parseInt(signature.slice(130, 132), 16);
  const v = vByte < 27 ? vByte + 27 : vByte;
  if (v !== 27 && v !== 28) return undefined;
  return { r: `0x${signature.slice(2, 66)}`, s: `0x${signature.slice(66, 130)}`, v };
}

/** The address whose key made `signature` over `digest`, or undefined (bad shape, high s, not on the curve). */
export function recoverDigestSigner(digest: Hex, signature: Hex): Address | undefined {
  const split = splitSignature(signature);
  if (!split || BigInt(split.s) > HALF_N) return undefined;
  try {
    const compact = hexToBytes(`0x${signature.slice(2, 130)}`);
    const publicKey = secp256k1.ecdsaRecover(compact, split.v - 27, hexToBytes(digest), false);
    return getAddress(`0x${keccak256(publicKey.subarray(1)).slice(26)}`);
  } catch {
    return undefined; // r or s out of range, or no point recovers
  }
}

/** The signer of EIP-712 typed data, or undefined when the signature is not a valid low-s ECDSA one. */
export function recoverTypedDataSigner<
  const typedData extends TypedData | Record<string, unknown>,
  primaryType extends keyof typedData | "EIP712Domain",
>(typedData: TypedDataDefinition<typedData, primaryType>, signature: Hex): Address | undefined {
  return recoverDigestSigner(hashTypedData(typedData), signature);
}
