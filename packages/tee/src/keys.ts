/**
 * Signing keys as a registrar receives them and as the registry stores them, for both schemes:
 *
 *   rsa-pss-sha256     the tee-gateway's RSA key: DER SubjectPublicKeyInfo (what `teeId` hashes)
 *   secp256k1-eip712   our TEE attestation v2 key: the 65-byte uncompressed point (0x04 ‖ x ‖ y)
 *
 * Accepted spellings: PEM (`-----BEGIN PUBLIC KEY-----`, RSA or secp256k1, as the gateway's
 * `GET /signing-key` answers), 0x-hex (the 65-byte point, or DER SPKI) or base64 of DER SPKI. Every
 * key is parsed by node:crypto, which refuses points off the curve and malformed DER. Pure.
 */
import { createPublicKey, type KeyObject } from "node:crypto";
import { getAddress, hexToBytes, isHex, keccak256, type Address, type Hex } from "viem";
import { decodeBase64 } from "./encoding.ts";
import { KeyScheme } from "./registry-abi.ts";
import { rsaPublicKey } from "./signing.ts";

export const SIGNING_KEY_SCHEMES = ["rsa-pss-sha256", "secp256k1-eip712"] as const;
export type SigningKeyScheme = (typeof SIGNING_KEY_SCHEMES)[number];

export interface SigningKey {
  scheme: SigningKeyScheme;
  /** The bytes the registry stores and the attestation binds: DER SPKI (RSA) or the 65-byte point. */
  bytes: Uint8Array;
}

export type SigningKeyVerdict = ({ ok: true } & SigningKey) | { ok: false; error: string };

/** The contract's enum value of a scheme, and back. */
export const keySchemeValue = (scheme: SigningKeyScheme): KeyScheme => (scheme === "rsa-pss-sha256" ? KeyScheme.RsaPssSha256 : KeyScheme.Secp256k1Eip712);
export const keySchemeName = (value: number): SigningKeyScheme | undefined =>
  value === KeyScheme.RsaPssSha256 ? "rsa-pss-sha256" : value === KeyScheme.Secp256k1Eip712 ? "secp256k1-eip712" : undefined;

const SECP256K1_POINT_BYTES = 65;

/** A secp256k1 public key object from its 65-byte uncompressed point; throws off the curve. */
function secp256k1Key(point: Uint8Array): KeyObject {
  if (point.length !== SECP256K1_POINT_BYTES || point[0] !== 0x04) throw new Error("a secp256k1 key is the 65-byte uncompressed point 0x04 ‖ x ‖ y");
  const b64url = (b: Uint8Array) => Buffer.from(b).toString("base64url");
  return createPublicKey({ key: { kty: "EC", crv: "secp256k1", x: b64url(point.subarray(1, 33)), y: b64url(point.subarray(33)) }, format: "jwk" });
}

/** The 65-byte point of a secp256k1 key object. */
function pointOf(key: KeyObject): Uint8Array {
  const jwk = key.export({ format: "jwk" });
  return Uint8Array.from([0x04, ...Buffer.from(jwk.x!, "base64url"), ...Buffer.from(jwk.y!, "base64url")]);
}

function fromKeyObject(key: KeyObject): SigningKeyVerdict {
  if (key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "secp256k1") return { ok: true, scheme: "secp256k1-eip712", bytes: pointOf(key) };
  if (key.asymmetricKeyType !== "rsa") return { ok: false, error: `a ${key.asymmetricKeyType} key is neither RSA (RSA-PSS) nor secp256k1` };
  const rsa = rsaPublicKey(key);
  if (!rsa.ok) return { ok: false, error: rsa.error };
  return { ok: true, scheme: "rsa-pss-sha256", bytes: new Uint8Array(key.export({ format: "der", type: "spki" })) };
}

/** A signing key from the text a registrar is given; the scheme follows from the key itself. */
export function parseSigningKey(text: string): SigningKeyVerdict {
  const trimmed = text.trim();
  try {
    if (trimmed.startsWith("-----BEGIN")) {
      if (!/^-----BEGIN PUBLIC KEY-----/.test(trimmed)) return { ok: false, error: "a PEM signing key must be a PUBLIC KEY (never send a private key)" };
      return fromKeyObject(createPublicKey(trimmed));
    }
    const bytes = isHex(trimmed, { strict: true }) && trimmed.length % 2 === 0 ? hexToBytes(trimmed as Hex) : decodeBase64(trimmed);
    if (!bytes || bytes.length === 0) return { ok: false, error: "the signing key is neither PEM, 0x-hex nor standard base64" };
    if (bytes.length === SECP256K1_POINT_BYTES && bytes[0] === 0x04) return { ok: true, scheme: "secp256k1-eip712", bytes: pointOf(secp256k1Key(bytes)) };
    return fromKeyObject(createPublicKey({ key: Buffer.from(bytes), format: "der", type: "spki" }));
  } catch (e) {
    return { ok: false, error: `the signing key cannot be read (${(e as Error).message})` };
  }
}

/** The Ethereum address of a secp256k1 key given as its 65-byte point (what EIP-712 recovery yields). */
export function secp256k1Address(point: Uint8Array | Hex): Address {
  const bytes = typeof point === "string" ? hexToBytes(point) : point;
  secp256k1Key(bytes); // refuses anything that is not a point on the curve
  return getAddress(`0x${keccak256(bytes.subarray(1)).slice(-40)}`);
}
