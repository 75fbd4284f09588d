/**
 * Attestation verifiers by TEE type: the one place a platform is plugged in. The registrar picks the
 * verifier of the type a registration names, the auditor the one of the type the registry recorded;
 * neither knows a platform's document format, roots or measurement rule.
 *
 * AWS Nitro is the only type today. Intel TDX is the next one: a DCAP quote verifier (e.g.
 * `@phala/dcap-qvl`, whose npm package ships no sample quote or collateral to test against yet) would
 * be a second entry here, with its own document (a TDX quote and its collateral), roots (Intel's SGX
 * root CA), measurement rule (MRTD and RTMR0-3) and a `TeeType` value of its own; the TEERegistry
 * stores any `uint8` type already, and a type without a verifier is refused (`unsupported_tee_type`)
 * by the registrar and fails the auditor's `tee-attestation` check.
 */
import type { Hex } from "viem";
import { verifyNitroAttestation, type NitroVerifyOptions } from "./attestation.ts";
import { TeeType } from "./registry-abi.ts";

/** What every platform's verifier is given: the roots, the approved measurements, the nonce book, the key and the time. */
export type AttestationVerifyOptions = Omit<NitroVerifyOptions, "approvedMeasurements"> & {
  /** Approved measurement hashes (lower-case hex), or a lookup of one (e.g. the registry's status). */
  approvedMeasurements: ReadonlySet<string> | ((measurement: { hash: Hex }) => boolean | Promise<boolean>);
};

/** A document that verified, in terms every platform shares. */
export interface VerifiedAttestation {
  /** The verifier's slug, e.g. "aws-nitro". */
  teeType: string;
  /** What the registry approves and revokes. */
  measurement: { hash: Hex };
  /** The platform registers the measurement is made of, by name (PCR0-2 for Nitro), for people to compare. */
  registers: Readonly<Record<string, Hex>>;
  /** SHA-256 fingerprint of the root the document chains to. */
  rootSha256: string;
  /** keccak256 of the document's bytes (what the registry records). */
  documentHash: Hex;
  /** The document's bytes (what goes to Walrus). */
  document: Uint8Array;
}

export type AttestationVerdict = { ok: true; attestation: VerifiedAttestation } | { ok: false; reason: string; message: string };

export interface AttestationVerifier {
  teeType: TeeType;
  /** The name a registration uses (`teeType` in POST /tees). */
  slug: string;
  /** For people: "AWS Nitro". */
  name: string;
  /** How the measurement is computed, for people. */
  measurementRule: string;
  verify(document: Uint8Array | string, opts: AttestationVerifyOptions): Promise<AttestationVerdict>;
}

const awsNitro: AttestationVerifier = {
  teeType: TeeType.AwsNitro,
  slug: "aws-nitro",
  name: "AWS Nitro",
  measurementRule: "keccak256(PCR0 ‖ PCR1 ‖ PCR2)",
  async verify(document, opts) {
    const verdict = await verifyNitroAttestation(document, opts);
    if (!verdict.ok) return verdict;
    const { measurement: m } = verdict.attestation;
    return { ok: true, attestation: { ...verdict.attestation, registers: { PCR0: m.pcr0, PCR1: m.pcr1, PCR2: m.pcr2 } } };
  },
};

/** Every TEE type this code can verify, by its registry value. */
export const ATTESTATION_VERIFIERS: ReadonlyMap<number, AttestationVerifier> = new Map([[awsNitro.teeType, awsNitro]]);

/** The verifier of a registry TEE type, or undefined when this code cannot verify that type. */
export const verifierFor = (teeType: number): AttestationVerifier | undefined => ATTESTATION_VERIFIERS.get(teeType);

/** The TEE type a slug ("aws-nitro") names, or undefined. */
export function teeTypeOfSlug(slug: string): TeeType | undefined {
  for (const v of ATTESTATION_VERIFIERS.values()) if (v.slug === slug) return v.teeType;
  return undefined;
}

/** Why a TEE type named by `field` is refused: the slugs this code verifies. */
export const unsupportedTeeType = (field: string): string => `${field} must be one of ${[...ATTESTATION_VERIFIERS.values()].map((v) => v.slug).join(", ")} (Intel TDX is not supported yet)`;

/** A TEE type for people: "AWS Nitro", or "TEE type 7" for one this code does not know. */
export const teeTypeName = (teeType: number): string => verifierFor(teeType)?.name ?? `TEE type ${teeType}`;
