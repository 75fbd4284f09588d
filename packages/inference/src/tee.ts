/**
 * TEE attestations: EIP-712 typed data signed by a TEE's secp256k1 key.
 *
 *   domain  {name: "TEE Inference", version: "1"}   (no chainId, no verifyingContract: one signature
 *            is valid on every chain the record may be anchored on)
 *   type    TeeAttestation(bytes32 teeId, bytes32 inputHash, bytes32 outputHash, uint256 timestamp)
 *
 * A TEE signs with viem's `signTypedData(teeTypedData(att))` (or any EIP-712 signer); the same digest
 * is checked on-chain by `SettlementRelay.verifyTeeSignature`. Recovery uses the native libsecp256k1
 * binding: pure-JS recovery costs about 3 ms, too slow for validating every record at the door.
 */
import secp256k1 from "secp256k1";
import { concat, encodeAbiParameters, getAddress, hashDomain, hexToBytes, keccak256, toBytes, toHex, type Address, type Hex } from "viem";

export interface TeeAttestation {
  teeId: Hex;
  inputHash: Hex;
  outputHash: Hex;
  /** uint256, usually unix seconds. */
  timestamp: bigint;
}

export const TEE_DOMAIN = { name: "TEE Inference", version: "1" } as const;

export const TEE_TYPES = {
  TeeAttestation: [
    { name: "teeId", type: "bytes32" },
    { name: "inputHash", type: "bytes32" },
    { name: "outputHash", type: "bytes32" },
    { name: "timestamp", type: "uint256" },
  ],
} as const;

/** The full typed-data definition, for viem's `signTypedData` / `hashTypedData`. */
export function teeTypedData(att: TeeAttestation) {
  return { domain: TEE_DOMAIN, types: TEE_TYPES, primaryType: "TeeAttestation" as const, message: att };
}

const TYPEHASH = keccak256(toBytes("TeeAttestation(bytes32 teeId,bytes32 inputHash,bytes32 outputHash,uint256 timestamp)"));
export const TEE_DOMAIN_SEPARATOR: Hex = hashDomain({
  domain: TEE_DOMAIN,
  types: { EIP712Domain: [{ name: "name", type: "string" }, { name: "version", type: "string" }] },
});

/** The EIP-712 digest, computed directly (viem's generic `hashTypedData` is ten times slower). */
export function teeAttestationDigest(att: TeeAttestation): Hex {
  const structHash = keccak256(
    encodeAbiParameters(
      [{ type: "bytes32" }, { type: "bytes32" }, { type: "bytes32" }, { type: "bytes32" }, { type: "uint256" }],
      [TYPEHASH, att.teeId, att.inputHash, att.outputHash, att.timestamp],
    ),
  );
  return keccak256(concat(["0x1901", TEE_DOMAIN_SEPARATOR, structHash]));
}

// secp256k1 group order / 2: signatures with a larger s are malleable copies, refused like OZ ECDSA does.
const HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n;

/** The address that signed `att`, or undefined when the signature is malformed or malleable. */
export function recoverTeeSigner(att: TeeAttestation, signature: Hex): Address | undefined {
  const sig = hexToBytes(signature);
  if (sig.length !== 65) return undefined;
  const v = sig[64];
  const recid = v >= 27 ? v - 27 : v;
  if (recid !== 0 && recid !== 1) return undefined;
  const s = BigInt(toHex(sig.subarray(32, 64)));
  if (s === 0n || s > HALF_N) return undefined;
  try {
    const pub = secp256k1.ecdsaRecover(sig.subarray(0, 64), recid, hexToBytes(teeAttestationDigest(att)), false);
    return getAddress(`0x${keccak256(pub.subarray(1)).slice(-40)}`);
  } catch {
    return undefined;
  }
}

/** Signs `att` like a TEE would (65-byte r‖s‖v, v = 27/28). For devnets and tests; TEEs sign on their own. */
export function signTeeAttestation(privateKey: Hex, att: TeeAttestation): Hex {
  const { signature, recid } = secp256k1.ecdsaSign(hexToBytes(teeAttestationDigest(att)), hexToBytes(privateKey));
  return toHex(concat([signature, Uint8Array.of(27 + recid)]));
}
