/**
 * What ties an attestation document to a key and an enclave image. Pure.
 *
 * Key binding: `user_data` in nitriding's layout, because that is how OpenGradient's tee-gateway binds
 * its key today. The gateway runs behind nitriding (brave/nitriding-daemon), posts SHA-256 of its
 * signing key's DER SPKI to nitriding's `/enclave/hash`, and nitriding asks the Nitro Secure Module
 * for documents whose user_data is two multihashes (68 bytes):
 *
 *   0x12 0x20 ‖ SHA-256(TLS certificate DER) ‖ 0x12 0x20 ‖ SHA-256(signing key bytes)
 *
 * (0x12 = sha2-256, 0x20 = 32 bytes; OpenGradient's registry precompile reads the same offsets). The
 * document's `public_key` field is not used: nitriding fills it with padding bytes. The signing key
 * bytes are the DER SPKI for RSA-PSS keys and the 65-byte uncompressed point for secp256k1 keys.
 *
 * Measurement: keccak256(PCR0 ‖ PCR1 ‖ PCR2), each PCR 48 bytes (SHA-384), as OpenGradient's
 * TEERegistry computes its `pcrHash`, so one approved measurement means the same image in both.
 */
import { createHash } from "node:crypto";
import { concat, keccak256, toHex, type Hex } from "viem";

const MULTIHASH_SHA256 = Uint8Array.of(0x12, 0x20);
export const NITRIDING_USER_DATA_LENGTH = 68;

const sha256 = (bytes: Uint8Array): Uint8Array => new Uint8Array(createHash("sha256").update(bytes).digest());
const equal = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

export interface NitridingHashes {
  /** SHA-256 of the enclave's TLS certificate (DER); all zero when the enclave registered none. */
  tlsCertificateHash: Uint8Array;
  /** SHA-256 of the signing key the enclave registered with nitriding. */
  signingKeyHash: Uint8Array;
}

/** user_data as nitriding writes it for the given TLS certificate and signing key. */
export function nitridingUserData(signingKey: Uint8Array, tlsCertificate?: Uint8Array): Uint8Array {
  const tls = tlsCertificate ? sha256(tlsCertificate) : new Uint8Array(32);
  return concat([MULTIHASH_SHA256, tls, MULTIHASH_SHA256, sha256(signingKey)]);
}

/** The two hashes of a nitriding user_data, or undefined when it is not in that layout. */
export function parseNitridingUserData(userData: Uint8Array | undefined): NitridingHashes | undefined {
  if (!userData || userData.length !== NITRIDING_USER_DATA_LENGTH) return undefined;
  if (!equal(userData.subarray(0, 2), MULTIHASH_SHA256) || !equal(userData.subarray(34, 36), MULTIHASH_SHA256)) return undefined;
  return { tlsCertificateHash: userData.slice(2, 34), signingKeyHash: userData.slice(36, 68) };
}

export type BindingVerdict = { ok: true; hashes: NitridingHashes } | { ok: false; reason: "key_not_bound" | "tls_certificate_not_bound"; message: string };

/** Whether user_data binds `signingKey` (and `tlsCertificate`, when one is expected). */
export function checkKeyBinding(userData: Uint8Array | undefined, signingKey: Uint8Array, tlsCertificate?: Uint8Array): BindingVerdict {
  const hashes = parseNitridingUserData(userData);
  if (!hashes) {
    return { ok: false, reason: "key_not_bound", message: `user_data is not nitriding's ${NITRIDING_USER_DATA_LENGTH}-byte pair of SHA-256 multihashes, so it binds no key` };
  }
  if (!equal(hashes.signingKeyHash, sha256(signingKey))) {
    return { ok: false, reason: "key_not_bound", message: `the document binds the key with SHA-256 ${toHex(hashes.signingKeyHash)}, not the key being registered` };
  }
  if (tlsCertificate && !equal(hashes.tlsCertificateHash, sha256(tlsCertificate))) {
    return { ok: false, reason: "tls_certificate_not_bound", message: "the document binds another TLS certificate" };
  }
  return { ok: true, hashes };
}

/** The PCRs a measurement covers: the enclave image (0), its kernel and boot (1), its application (2). */
export const MEASURED_PCRS = [0, 1, 2] as const;
const PCR_BYTES = 48;

export interface Measurement {
  pcr0: Hex;
  pcr1: Hex;
  pcr2: Hex;
  /** keccak256(pcr0 ‖ pcr1 ‖ pcr2): what the registry approves and revokes. */
  hash: Hex;
}

/** The measurement of three 48-byte PCR values (hex or bytes). */
export function measurementOf(pcr0: Hex | Uint8Array, pcr1: Hex | Uint8Array, pcr2: Hex | Uint8Array): Measurement {
  const hexes = [pcr0, pcr1, pcr2].map((p) => (typeof p === "string" ? (p.toLowerCase() as Hex) : toHex(p)));
  for (const [i, h] of hexes.entries()) {
    if (!/^0x[0-9a-f]*$/.test(h) || h.length !== 2 + 2 * PCR_BYTES) throw new Error(`PCR${i} must be ${PCR_BYTES} bytes (SHA-384)`);
  }
  const [a, b, c] = hexes as [Hex, Hex, Hex];
  return { pcr0: a, pcr1: b, pcr2: c, hash: keccak256(concat([a, b, c])) };
}

/** The measurement of a document's PCRs, or an error when PCR0-2 are missing or not SHA-384 values. */
export function documentMeasurement(pcrs: ReadonlyMap<number, Uint8Array>): Measurement | string {
  const values = MEASURED_PCRS.map((i) => pcrs.get(i));
  const missing = values.findIndex((v) => !v || v.length !== PCR_BYTES);
  if (missing >= 0) return `PCR${missing} is missing or not a ${PCR_BYTES}-byte SHA-384 value`;
  return measurementOf(values[0]!, values[1]!, values[2]!);
}
