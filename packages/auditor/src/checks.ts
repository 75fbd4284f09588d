/** The audit's checks, in the order they run, and the report they add up to. */

export const CheckName = {
  findAnchor: "find-anchor",
  fetchDump: "fetch-dump",
  blobId: "blob-id",
  recomputeRoot: "recompute-root",
  rootMatchesEvent: "root-matches-event",
  relayEvent: "relay-event",
  proof: "proof",
  teeRegistered: "tee-registered",
  teeAttestation: "tee-attestation",
  teeMeasurement: "tee-measurement",
  teeSignature: "tee-signature",
} as const;

export type CheckName = (typeof CheckName)[keyof typeof CheckName];

export const CHECK_ORDER: readonly CheckName[] = Object.values(CheckName);

export const CHECK_TITLES: Record<CheckName, string> = {
  "find-anchor": "anchoring event found on chain",
  "fetch-dump": "batch dump fetched from the aggregator",
  "blob-id": "dump content matches its blob id",
  "recompute-root": "root recomputed from the dump's leaves",
  "root-matches-event": "recomputed root equals the event's root",
  "relay-event": "event from the configured relay, successful tx, anchoredAt set",
  proof: "leaf's Merkle proof holds against the root",
  "tee-registered": "TEE registered in the TEE registry when the record was anchored",
  "tee-attestation": "attestation document (Walrus) matches the registry and verifies to a trusted root",
  "tee-measurement": "enclave measurement approved, not revoked, when the record was anchored",
  "tee-signature": "TEE signature verifies against the attested (or configured) key",
};

/** The checks that together say "attested by an approved enclave". */
export const TRUST_CHECKS = [CheckName.teeRegistered, CheckName.teeAttestation, CheckName.teeMeasurement, CheckName.teeSignature] as const;

/** Anchored and attested by an approved enclave: verified, and every trust check passed on evidence (none merely not applicable). */
export function isAttested(checks: readonly CheckResult[]): boolean {
  return isVerified(checks) && TRUST_CHECKS.every((name) => checks.some((c) => c.name === name && c.ok && !c.skipped));
}

export interface CheckResult {
  name: CheckName;
  /** False when the check failed or could not run because an earlier one failed. */
  ok: boolean;
  /** The check did not apply (e.g. no TEE signature recorded) or could not run; `ok` says which. */
  skipped?: boolean;
  detail: string;
}

export const pass = (name: CheckName, detail: string): CheckResult => ({ name, ok: true, detail });
export const fail = (name: CheckName, detail: string): CheckResult => ({ name, ok: false, detail });
/** The check does not apply to this anchor; it does not count against the verdict. */
export const notApplicable = (name: CheckName, detail: string): CheckResult => ({ name, ok: true, skipped: true, detail });
/** The check could not run because an earlier one failed; it counts as not verified. */
export const notRun = (name: CheckName, because: string): CheckResult => ({ name, ok: false, skipped: true, detail: `not run: ${because}` });

/** The first check that failed on its own evidence (not one that merely could not run). */
export function firstFailure(checks: readonly CheckResult[]): CheckResult | undefined {
  return checks.find((c) => !c.ok && !c.skipped) ?? checks.find((c) => !c.ok);
}

/** Verified only when every check passed or did not apply, and none is missing. */
export function isVerified(checks: readonly CheckResult[]): boolean {
  return checks.length > 0 && checks.every((c) => c.ok);
}
