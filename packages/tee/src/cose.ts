/**
 * COSE_Sign1 (RFC 9052, section 4.2) as AWS Nitro uses it: a CBOR array
 *   [protected: bstr (a CBOR map {1: -35}, alg ES384), unprotected: map, payload: bstr, signature: bstr]
 * optionally under tag 18, signed with ECDSA P-384 / SHA-384, the signature being r ‖ s (96 bytes).
 *
 * CBOR is decoded and encoded by `cborg` (strict: minimal integer encodings, no duplicate map keys).
 * Written here, because no well-kept npm COSE package fits (`cose-js` and `@auth0/cose` are little
 * used and bring their own crypto stacks): the Sig_structure, a four-element CBOR array, and the
 * ES384 check, which is one `crypto.verify` call in node:crypto.
 */
import { verify, X509Certificate, type KeyObject } from "node:crypto";
import { decode, encode, type DecodeOptions } from "cborg";

/** COSE algorithm id of ECDSA with SHA-384 (RFC 9053, table 1). */
export const COSE_ALG_ES384 = -35;
const COSE_HEADER_ALG = 1;
const COSE_SIGN1_TAG = 18;

/** Decoding rules for every CBOR item of a document: strict, maps kept as Map (PCR keys are integers). */
export const CBOR_DECODE: DecodeOptions = {
  strict: true,
  useMaps: true,
  rejectDuplicateMapKeys: true,
  allowUndefined: false,
  // NSM encodes the payload's maps with indefinite length: they must be accepted.
  allowIndefinite: true,
  tags: { [COSE_SIGN1_TAG]: (content) => content() },
};

export interface CoseSign1 {
  /** The protected header exactly as signed (a serialized CBOR map). */
  protectedHeader: Uint8Array;
  payload: Uint8Array;
  signature: Uint8Array;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

/** One CBOR item under CBOR_DECODE's rules, or an error naming `what` was not CBOR. */
export function decodeCbor(bytes: Uint8Array, what: string): Parsed<unknown> {
  try {
    return { ok: true, value: decode(bytes, CBOR_DECODE) };
  } catch (e) {
    return { ok: false, error: `${what} is not CBOR (${(e as Error).message})` };
  }
}

/** Splits a COSE_Sign1 message and checks that its protected header names ES384 and nothing else. */
export function parseCoseSign1(bytes: Uint8Array): Parsed<CoseSign1> {
  const decoded = decodeCbor(bytes, "the document");
  if (!decoded.ok) return decoded;
  const outer = decoded.value;
  if (!Array.isArray(outer) || outer.length !== 4) return { ok: false, error: "the document is not a COSE_Sign1 array of four items" };
  const [protectedHeader, unprotected, payload, signature] = outer as unknown[];
  if (!(protectedHeader instanceof Uint8Array) || !(payload instanceof Uint8Array) || !(signature instanceof Uint8Array)) {
    return { ok: false, error: "COSE_Sign1 protected header, payload and signature must be byte strings" };
  }
  if (!(unprotected instanceof Map)) return { ok: false, error: "COSE_Sign1 unprotected header must be a map" };
  const decodedHeader = decodeCbor(protectedHeader, "the COSE_Sign1 protected header");
  if (!decodedHeader.ok) return decodedHeader;
  const header = decodedHeader.value;
  // Anything beyond the algorithm (e.g. `crit`) would be a header we do not understand: refuse it.
  if (!(header instanceof Map) || header.size !== 1 || header.get(COSE_HEADER_ALG) !== COSE_ALG_ES384) {
    return { ok: false, error: "COSE_Sign1 protected header must be {1: -35} (ES384 only)" };
  }
  if (unprotected.has(COSE_HEADER_ALG)) return { ok: false, error: "COSE_Sign1 names its algorithm in the unprotected header" };
  if (signature.length !== 96) return { ok: false, error: `an ES384 signature is 96 bytes (r ‖ s), this one is ${signature.length}` };
  return { ok: true, value: { protectedHeader, payload, signature } };
}

/** The bytes ES384 signs: Sig_structure = ["Signature1", protected, external_aad (empty), payload]. */
export function sigStructure(msg: Pick<CoseSign1, "protectedHeader" | "payload">): Uint8Array {
  return encode(["Signature1", msg.protectedHeader, new Uint8Array(0), msg.payload]);
}

/** The P-384 public key of a DER certificate (the document's signing certificate), or why not. */
export function p384CertificateKey(certificate: Uint8Array): Parsed<KeyObject> {
  let key: KeyObject;
  try {
    key = new X509Certificate(certificate).publicKey;
  } catch (e) {
    return { ok: false, error: `the signing certificate cannot be parsed (${(e as Error).message})` };
  }
  if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "secp384r1") {
    return { ok: false, error: "the signing certificate's key is not ECDSA P-384" };
  }
  return { ok: true, value: key };
}

/** True when `msg.signature` is `key`'s ES384 signature over the message's Sig_structure. */
export function verifyEs384(msg: CoseSign1, key: KeyObject): boolean {
  return verify("sha384", sigStructure(msg), { key, dsaEncoding: "ieee-p1363" }, msg.signature);
}
