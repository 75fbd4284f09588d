/**
 * `verifyNitroAttestation`: everything a registrar (and later an auditor) checks in an AWS Nitro
 * attestation document before a key is trusted as an enclave's, in this order:
 *
 *   1. syntax: a COSE_Sign1 message (ES384 only) whose payload follows the Nitro specification;
 *   2. the ES384 signature by the document's signing certificate (a changed byte anywhere fails);
 *   3. that certificate's chain through `cabundle` to a configured root, every certificate valid at
 *      `now` (the AWS Nitro root in production, a TestAuthority's root in the local world and tests);
 *   4. PCR0-2 form an approved measurement;
 *   5. user_data binds the key being registered (and the TLS certificate, when one is expected);
 *   6. the nonce is one the registrar issued, unexpired and unused; it is consumed only here, last.
 *
 * The first failing check is the answer: a reason string for code and a message for people. Nothing
 * is written anywhere (the nonce aside), so a caller writes only after an `ok: true`.
 */
import { keccak256, toHex, type Hex } from "viem";
import { checkKeyBinding, documentMeasurement, type Measurement } from "./binding.ts";
import { verifyCertificateChain, type ChainRefusal, type TrustedRoot } from "./chain.ts";
import { p384CertificateKey, parseCoseSign1, verifyEs384 } from "./cose.ts";
import { asBytes, decodeBase64 } from "./encoding.ts";
import { parseNitroPayload } from "./nitro-document.ts";
import type { NonceCheck, NonceRefusal } from "./nonces.ts";

/** Documents larger than this are refused unread (a real one is about 4.5 KiB). */
export const MAX_DOCUMENT_BYTES = 16 * 1024;

/**
 * Approved measurements: a set of measurement hashes (lower-case hex), or a lookup (e.g. the
 * registry's `measurementStatus`). A lookup that throws makes the verification throw: an outage is
 * not a refusal.
 */
export type MeasurementPolicy = ReadonlySet<string> | ((measurement: Measurement) => boolean | Promise<boolean>);

export interface NitroVerifyOptions {
  /** The roots a chain may end at: `[AWS_NITRO_ROOT_PEM]` in production. PEM or DER. */
  roots: readonly TrustedRoot[];
  approvedMeasurements: MeasurementPolicy;
  /** The registrar's nonces (`NonceBook`), or `NONCE_NOT_CHECKED` for an archived document. */
  nonce: NonceCheck;
  /** The key being registered: DER SPKI (RSA-PSS) or the 65-byte uncompressed point (secp256k1). */
  expectedKey: Uint8Array | Hex;
  /** When given, the document must bind this TLS certificate (DER) as well. */
  expectedTlsCertificate?: Uint8Array;
  /** The time certificates must be valid at and nonces unexpired at. */
  now: Date;
}

export type NitroRefusalReason =
  | "attestation_malformed"
  | "attestation_signature_invalid"
  | `attestation_${ChainRefusal}`
  | "attestation_measurement_not_approved"
  | "attestation_key_not_bound"
  | "attestation_tls_certificate_not_bound"
  | `attestation_${NonceRefusal}`;

export interface VerifiedNitroAttestation {
  teeType: "aws-nitro";
  moduleId: string;
  /** When the Nitro Secure Module made the document. */
  timestamp: Date;
  measurement: Measurement;
  /** Every PCR the document carries, as lower-case hex. */
  pcrs: ReadonlyMap<number, Hex>;
  nonce?: Hex;
  /** SHA-256 of the bound signing key and TLS certificate, as user_data holds them. */
  signingKeyHash: Hex;
  tlsCertificateHash: Hex;
  /** SHA-256 fingerprint of the root the chain ends at. */
  rootSha256: string;
  /** keccak256 of the document's bytes: what the registry records beside the Walrus blob id. */
  documentHash: Hex;
  /** The document's bytes (decoded from base64 when it came as text): what goes to Walrus. */
  document: Uint8Array;
}

export type NitroVerdict = { ok: true; attestation: VerifiedNitroAttestation } | { ok: false; reason: NitroRefusalReason; message: string };

const refuse = (reason: NitroRefusalReason, message: string): NitroVerdict => ({ ok: false, reason, message });

/** The document's bytes from raw CBOR or base64 text (as `GET /enclave/attestation` answers). */
export function attestationBytes(document: Uint8Array | string): Uint8Array | undefined {
  return typeof document === "string" ? decodeBase64(document.trim()) : document;
}

async function approved(policy: MeasurementPolicy, measurement: Measurement): Promise<boolean> {
  return typeof policy === "function" ? policy(measurement) : policy.has(measurement.hash);
}

export async function verifyNitroAttestation(document: Uint8Array | string, opts: NitroVerifyOptions): Promise<NitroVerdict> {
  const bytes = attestationBytes(document);
  if (!bytes) return refuse("attestation_malformed", "the document is neither bytes nor standard base64 text");
  if (bytes.length > MAX_DOCUMENT_BYTES) return refuse("attestation_malformed", `the document is ${bytes.length} bytes; at most ${MAX_DOCUMENT_BYTES} are read`);
  const cose = parseCoseSign1(bytes);
  if (!cose.ok) return refuse("attestation_malformed", cose.error);
  const payload = parseNitroPayload(cose.value.payload);
  if (!payload.ok) return refuse("attestation_malformed", payload.error);
  const doc = payload.value;

  const key = p384CertificateKey(doc.certificate);
  if (!key.ok) return refuse("attestation_malformed", key.error);
  if (!verifyEs384(cose.value, key.value)) {
    return refuse("attestation_signature_invalid", "the COSE_Sign1 signature is not the signing certificate's over this document (altered or forged)");
  }

  const chain = await verifyCertificateChain(doc.certificate, doc.cabundle, opts.roots, opts.now);
  if (!chain.ok) return refuse(`attestation_${chain.reason}`, chain.message);

  const measurement = documentMeasurement(doc.pcrs);
  if (typeof measurement === "string") return refuse("attestation_malformed", measurement);
  if (!(await approved(opts.approvedMeasurements, measurement))) {
    return refuse("attestation_measurement_not_approved", `measurement ${measurement.hash} (PCR0 ${measurement.pcr0}) is not approved`);
  }

  const binding = checkKeyBinding(doc.userData, asBytes(opts.expectedKey, "expectedKey"), opts.expectedTlsCertificate);
  if (!binding.ok) return refuse(`attestation_${binding.reason}`, binding.message);

  const nonce = await opts.nonce.redeem(doc.nonce, opts.now);
  if (!nonce.ok) return refuse(`attestation_${nonce.reason}`, nonce.message);

  return {
    ok: true,
    attestation: {
      teeType: "aws-nitro",
      moduleId: doc.moduleId,
      timestamp: new Date(doc.timestamp),
      measurement,
      pcrs: new Map([...doc.pcrs].map(([i, v]) => [i, toHex(v)])),
      nonce: doc.nonce ? toHex(doc.nonce) : undefined,
      signingKeyHash: toHex(binding.hashes.signingKeyHash),
      tlsCertificateHash: toHex(binding.hashes.tlsCertificateHash),
      rootSha256: chain.rootSha256,
      documentHash: keccak256(bytes),
      document: bytes,
    },
  };
}
