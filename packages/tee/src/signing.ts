/**
 * The signing scheme of OpenGradient's tee-gateway, as its public sources define it (tee-gateway
 * `tee_gateway/tee_manager.py` and `heartbeat/heartbeat.py`; og-evm `precompiles/rsa/precompile.go`,
 * the on-chain verifier the gateway was written against):
 *
 * - key: RSA-2048 generated in the enclave; `teeId = keccak256(DER SubjectPublicKeyInfo)`;
 * - inference: the message is the 32-byte digest `keccak256(inputHash ‖ outputHash ‖ timestamp)`,
 *   timestamp a uint256 (32 bytes, big-endian); inputHash = keccak256(request bytes) and outputHash =
 *   keccak256(response text, UTF-8);
 * - heartbeat: the message is `keccak256(teeId ‖ timestamp)`, same encoding, unix seconds;
 * - signature: RSASSA-PSS over that 32-byte message with SHA-256 as the hash (so SHA-256 of the
 *   keccak digest is what PSS encodes), MGF1 with SHA-256, salt length 32 (the gateway's
 *   `salt_length = SHA256 digest size`, the precompile's `PSSSaltLengthEqualsHash`); base64 in transit.
 *
 * A signature with another salt length verifies nowhere on their side, so it is refused here too;
 * keys under 2048 bits are refused as their precompile refuses them.
 */
import { constants, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from "node:crypto";
import { encodePacked, hexToBytes, keccak256, type Hex } from "viem";
import { decodeBase64, encodeBase64 } from "./encoding.ts";

export const RSA_PSS_SALT_LENGTH = 32;
export const MIN_RSA_BITS = 2048;
/** Larger keys only cost verification time: nobody needs more. */
export const MAX_RSA_BITS = 4096;

const UINT256_MAX = 2n ** 256n - 1n;
const HASH32 = /^0x[0-9a-fA-F]{64}$/;

/** A TEE's id from its signing key's bytes (the DER SPKI for RSA keys). */
export const teeIdOf = (signingKey: Uint8Array): Hex => keccak256(signingKey);

function uint256(timestamp: bigint): bigint {
  if (timestamp < 0n || timestamp > UINT256_MAX) throw new Error("timestamp must be a uint256");
  return timestamp;
}

function hash32(value: Hex, what: string): Hex {
  if (!HASH32.test(value)) throw new Error(`${what} must be 32 bytes of hex`);
  return value;
}

/** What the gateway signs for one inference. */
export function inferenceMessageHash(inputHash: Hex, outputHash: Hex, timestamp: bigint): Hex {
  return keccak256(encodePacked(["bytes32", "bytes32", "uint256"], [hash32(inputHash, "inputHash"), hash32(outputHash, "outputHash"), uint256(timestamp)]));
}

/** What the gateway signs for a heartbeat. */
export function heartbeatMessageHash(teeId: Hex, timestamp: bigint): Hex {
  return keccak256(encodePacked(["bytes32", "uint256"], [hash32(teeId, "teeId"), uint256(timestamp)]));
}

export type RsaKeyVerdict = { ok: true; key: KeyObject; bits: number } | { ok: false; error: string };

/** An RSA public key from DER SPKI, refused outside 2048-4096 bits. */
export function rsaPublicKey(spki: Uint8Array | KeyObject): RsaKeyVerdict {
  let key: KeyObject;
  try {
    key = spki instanceof Uint8Array ? createPublicKey({ key: Buffer.from(spki), format: "der", type: "spki" }) : spki;
  } catch (e) {
    return { ok: false, error: `not a DER SubjectPublicKeyInfo (${(e as Error).message})` };
  }
  if (key.type !== "public" || key.asymmetricKeyType !== "rsa") return { ok: false, error: "not an RSA public key" };
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < MIN_RSA_BITS || bits > MAX_RSA_BITS) return { ok: false, error: `an RSA key of ${bits} bits; ${MIN_RSA_BITS} to ${MAX_RSA_BITS} are accepted` };
  return { ok: true, key, bits };
}

export type SignatureVerdict =
  | { ok: true }
  | { ok: false; reason: "signing_key_invalid" | "signature_malformed" | "signature_invalid"; message: string };

/** RSA-PSS-SHA256 (salt 32) of `messageHash` (32 bytes) by `publicKey`; the signature as base64 text or bytes. */
export function verifyRsaPss(publicKey: Uint8Array | KeyObject, messageHash: Hex, signature: string | Uint8Array): SignatureVerdict {
  const key = rsaPublicKey(publicKey);
  if (!key.ok) return { ok: false, reason: "signing_key_invalid", message: key.error };
  const sig = typeof signature === "string" ? decodeBase64(signature) : signature;
  if (!sig) return { ok: false, reason: "signature_malformed", message: "the signature is not standard base64" };
  if (sig.length !== key.bits / 8) return { ok: false, reason: "signature_malformed", message: `the signature is ${sig.length} bytes; this key's are ${key.bits / 8}` };
  const good = verify("sha256", hexToBytes(hash32(messageHash, "messageHash")), { key: key.key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: RSA_PSS_SALT_LENGTH }, sig);
  return good ? { ok: true } : { ok: false, reason: "signature_invalid", message: "the RSA-PSS signature is not this key's over this message" };
}

export interface GatewayInference {
  publicKey: Uint8Array | KeyObject;
  inputHash: Hex;
  outputHash: Hex;
  timestamp: bigint;
  signature: string | Uint8Array;
}

/** Verifies a gateway's signature of one inference. */
export function verifyGatewaySignature(r: GatewayInference): SignatureVerdict {
  return verifyRsaPss(r.publicKey, inferenceMessageHash(r.inputHash, r.outputHash, r.timestamp), r.signature);
}

export interface GatewayHeartbeat {
  publicKey: Uint8Array | KeyObject;
  teeId: Hex;
  timestamp: bigint;
  signature: string | Uint8Array;
}

/** Verifies a gateway's heartbeat signature. */
export function verifyHeartbeatSignature(h: GatewayHeartbeat): SignatureVerdict {
  return verifyRsaPss(h.publicKey, heartbeatMessageHash(h.teeId, h.timestamp), h.signature);
}

/** Signs a 32-byte message as the gateway does; base64. For the local world and tests (gateways sign in their enclave). */
export function signRsaPss(privateKey: KeyObject | string, messageHash: Hex): string {
  const key = typeof privateKey === "string" ? createPrivateKey(privateKey) : privateKey;
  const sig = sign("sha256", hexToBytes(hash32(messageHash, "messageHash")), { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: RSA_PSS_SALT_LENGTH });
  return encodeBase64(new Uint8Array(sig));
}

export interface GatewayKey {
  /** PKCS#8 PEM, as devnet.json hands it to clients that act as a gateway. */
  privateKeyPem: string;
  /** DER SubjectPublicKeyInfo: the bytes the registry stores and the attestation binds. */
  publicKey: Uint8Array;
  teeId: Hex;
}

/** A fresh RSA-2048 key shaped like a gateway's, with its teeId. */
export function generateGatewayKey(): GatewayKey {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048, publicExponent: 65537 });
  const spki = new Uint8Array(publicKey.export({ format: "der", type: "spki" }));
  return { privateKeyPem: privateKey.export({ format: "pem", type: "pkcs8" }).toString(), publicKey: spki, teeId: teeIdOf(spki) };
}
