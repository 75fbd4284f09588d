/**
 * Whether a record came from an approved enclave, decided from the chain, Walrus and the auditor's own
 * attestation roots, without asking the facilitator. For a TEE named by a leaf:
 *
 *   tee-registered    the TEERegistry holds it, registered at or before the anchoring block
 *   tee-attestation   its attestation document, fetched from Walrus by the registry's blob id, hashes to
 *                     the registry's hash and verifies (COSE signature, chain to a configured root at
 *                     the registration time, PCRs giving the registry's measurement, the registered key
 *                     bound in user_data)
 *   tee-measurement   that measurement was approved, and neither it nor the TEE revoked, at the
 *                     anchoring block
 *   tee-signature     the leaf's signature is under the attested key (tee.ts), whatever the scheme
 *
 * Evidence is gathered once per TEE per audit (teeEvidence, I/O); the judgments are pure.
 *
 * Two kinds of "not attested": missing evidence (an unsigned record, a settle event that carries no
 * TEE data, a TEE not registered when the record was anchored, no registry configured) fails a check
 * only when attestation is required (`requireAttested`), otherwise the check does not apply and the
 * record is merely "anchored"; contradicting evidence (a blob that does not match, a document that does
 * not verify, a revoked measurement or TEE) always fails.
 */
import { hexToBytes, keccak256, type Address, type Hex } from "viem";
import { keySchemeName, MeasurementStatus, NONCE_NOT_CHECKED, secp256k1Address, TEE_REGISTRY_ABI, verifierFor, type TrustedRoot } from "@facilitator/tee";
import type { BlobFetch } from "./aggregator.ts";
import type { ChainReader } from "./chain.ts";
import type { AttestedKey } from "./tee.ts";

export interface TeeTrustSetup {
  /** The TEERegistry the auditor trusts (its own configuration), on the relay's chain. */
  registry?: Address;
  roots: readonly TrustedRoot[];
  /** Anything less than "attested by an approved enclave" fails the audit. */
  requireAttested: boolean;
}

export interface RegistryEntry {
  signingKey: Hex;
  scheme: number;
  teeType: number;
  registeredBlock: bigint;
  registeredAt: bigint;
  revokedBlock: bigint;
  measurement: Hex;
  attestationHash: Hex;
  attestationBlobId: string;
}

export interface TeeEvidence {
  teeId: Hex;
  /** Undefined when the registry never registered this TEE. */
  entry?: RegistryEntry;
  measurement?: { status: number; approvedBlock: bigint; revokedBlock: bigint };
  /** The attestation document's verdict, when there is an entry. */
  attestation?: { ok: true; rootSha256: string; registers: Readonly<Record<string, Hex>> } | { ok: false; detail: string };
  /** The key the registry holds, as the signature check uses it. */
  key?: AttestedKey;
}

/** A check's judgment before it becomes a CheckResult: passed, failed, or not applicable. */
export type Judgment = { status: "pass" | "fail" | "n/a"; detail: string };
const pass = (detail: string): Judgment => ({ status: "pass", detail });
const fail = (detail: string): Judgment => ({ status: "fail", detail });
/** Missing evidence: a failure only when attestation is required. */
const missing = (setup: TeeTrustSetup, detail: string): Judgment => (setup.requireAttested ? fail(`${detail} (attestation is required)`) : { status: "n/a", detail });

/** What the registry and Walrus say about one TEE (I/O; the caller caches it per audit). */
export async function teeEvidence(chain: ChainReader, registry: Address, roots: readonly TrustedRoot[], getBlob: (id: string) => Promise<BlobFetch>, teeId: Hex): Promise<TeeEvidence> {
  const read = <T>(functionName: string, args: readonly unknown[]) => chain.client.readContract({ address: registry, abi: TEE_REGISTRY_ABI, functionName, args } as never) as Promise<T>;
  const raw = await read<RegistryEntry & { attestationBlobId: Hex }>("getTee", [teeId]);
  if (raw.registeredBlock === 0n) return { teeId };
  const entry: RegistryEntry = { ...raw, attestationBlobId: Buffer.from(hexToBytes(raw.attestationBlobId)).toString("utf8") };
  const measurement = await read<TeeEvidence["measurement"]>("measurementStatus", [entry.teeType, entry.measurement]);
  return { teeId, entry, measurement, attestation: await attestationVerdict(entry, roots, getBlob), key: attestedKey(entry) };
}

function attestedKey(entry: RegistryEntry): AttestedKey | undefined {
  const scheme = keySchemeName(entry.scheme);
  if (scheme === "rsa-pss-sha256") return { scheme, publicKey: hexToBytes(entry.signingKey) };
  if (scheme !== "secp256k1-eip712") return undefined;
  try {
    return { scheme, address: secp256k1Address(entry.signingKey) };
  } catch {
    return undefined;
  }
}

async function attestationVerdict(entry: RegistryEntry, roots: readonly TrustedRoot[], getBlob: (id: string) => Promise<BlobFetch>): Promise<TeeEvidence["attestation"]> {
  const blob = await getBlob(entry.attestationBlobId);
  if (!blob.ok) return { ok: false, detail: `the attestation document (blob ${entry.attestationBlobId}) cannot be fetched: ${blob.error}` };
  const hash = keccak256(blob.bytes);
  if (hash !== entry.attestationHash) return { ok: false, detail: `blob ${entry.attestationBlobId} hashes to ${hash}, not to the registry's attestation hash ${entry.attestationHash}` };
  const verifier = verifierFor(entry.teeType);
  if (!verifier) return { ok: false, detail: `TEE type ${entry.teeType} has no attestation verifier in this auditor` };
  // Signing certificates live hours: the document is judged at the registration time, its nonce was the registrar's to check.
  const verdict = await verifier.verify(blob.bytes, {
    roots,
    approvedMeasurements: (m) => m.hash === entry.measurement.toLowerCase(),
    nonce: NONCE_NOT_CHECKED,
    expectedKey: hexToBytes(entry.signingKey),
    now: new Date(Number(entry.registeredAt) * 1000),
  });
  if (!verdict.ok) {
    const why = verdict.reason === "attestation_measurement_not_approved" ? "its PCRs are not the measurement the registry recorded" : verdict.message;
    return { ok: false, detail: `the attestation document does not verify (${verdict.reason}): ${why}` };
  }
  return { ok: true, rootSha256: verdict.attestation.rootSha256, registers: verdict.attestation.registers };
}

/** The leaf names no TEE, or its kind of anchor carries none: every trust check judges the same. */
export function noTee(setup: TeeTrustSetup, why: string): Judgment {
  return missing(setup, why);
}

export function judgeRegistered(setup: TeeTrustSetup, ev: TeeEvidence | undefined, anchorBlock: bigint): Judgment {
  if (!setup.registry || !ev) return missing(setup, "no TEE registry is configured (--tee-registry)");
  if (!ev.entry) return missing(setup, `TEE ${ev.teeId} was never registered in the TEE registry ${setup.registry}`);
  if (ev.entry.registeredBlock > anchorBlock) {
    return missing(setup, `TEE ${ev.teeId} was registered at block ${ev.entry.registeredBlock}, after the record was anchored (block ${anchorBlock})`);
  }
  return pass(`TEE ${ev.teeId} registered at block ${ev.entry.registeredBlock}, before the anchor (block ${anchorBlock})`);
}

export function judgeAttestation(setup: TeeTrustSetup, ev: TeeEvidence | undefined): Judgment {
  if (!setup.registry || !ev?.entry || !ev.attestation) return missing(setup, "no registered attestation to check");
  if (!ev.attestation.ok) return fail(ev.attestation.detail);
  const [first] = Object.entries(ev.attestation.registers);
  const register = first ? ` (${first[0]} ${first[1].slice(0, 18)}…)` : "";
  return pass(`document ${ev.entry.attestationBlobId} matches the registry's hash and chains to the root ${ev.attestation.rootSha256.slice(0, 16)}…${register}`);
}

export function judgeMeasurement(setup: TeeTrustSetup, ev: TeeEvidence | undefined, anchorBlock: bigint): Judgment {
  if (!setup.registry || !ev?.entry || !ev.measurement) return missing(setup, "no registered measurement to check");
  const { entry, measurement: m } = ev;
  if (entry.revokedBlock !== 0n && entry.revokedBlock <= anchorBlock) return fail(`TEE ${ev.teeId} was revoked at block ${entry.revokedBlock}, before the anchor (block ${anchorBlock})`);
  if (m.status === MeasurementStatus.None || m.approvedBlock === 0n || m.approvedBlock > anchorBlock) {
    return fail(`measurement ${entry.measurement} was not approved at the anchoring block ${anchorBlock}`);
  }
  if (m.status === MeasurementStatus.Revoked && m.revokedBlock <= anchorBlock) {
    return fail(`measurement ${entry.measurement} was revoked at block ${m.revokedBlock}, before the anchor (block ${anchorBlock})`);
  }
  const later = m.status === MeasurementStatus.Revoked ? `; revoked later, at block ${m.revokedBlock}` : "";
  return pass(`measurement ${entry.measurement} approved at block ${m.approvedBlock}${later}`);
}
