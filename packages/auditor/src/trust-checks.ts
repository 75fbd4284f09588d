/**
 * The trust checks of an anchor (tee-registered, tee-attestation, tee-measurement, tee-signature) as
 * report entries: for one leaf, for every leaf of a batch, or for an individual settlement event (which
 * carries no TEE data on chain). The judgments are tee-trust.ts's; this turns them into CheckResults.
 */
import { shortError } from "./chain.ts";
import { fail, notApplicable, pass, TRUST_CHECKS, type CheckResult } from "./checks.ts";
import type { AuditContext } from "./context.ts";
import { ZERO_BYTES32, type InferenceLeaf } from "./formats.ts";
import { checkTeeSignature, describeTeeVerdict } from "./tee.ts";
import { judgeAttestation, judgeMeasurement, judgeRegistered, noTee, type Judgment, type TeeTrustSetup } from "./tee-trust.ts";

type TrustName = (typeof TRUST_CHECKS)[number];
export type LeafTrust = Record<TrustName, Judgment>;

const result = (name: TrustName, j: Judgment): CheckResult => (j.status === "pass" ? pass(name, j.detail) : j.status === "fail" ? fail(name, j.detail) : notApplicable(name, j.detail));
const every = (j: Judgment): LeafTrust => ({ "tee-registered": j, "tee-attestation": j, "tee-measurement": j, "tee-signature": j });

/** The four judgments of one leaf anchored at `anchorBlock`. */
export async function leafTrust(ctx: AuditContext, leaf: InferenceLeaf, anchorBlock: bigint): Promise<LeafTrust> {
  const setup = ctx.trust;
  if (leaf.teeId === ZERO_BYTES32 && leaf.teeSignature === "0x") return every(noTee(setup, "the record carries no TEE signature (teeId zero)"));
  let ev;
  try {
    ev = await ctx.teeEvidence(leaf.teeId);
  } catch (e) {
    return every({ status: "fail", detail: `the TEE registry could not be read: ${shortError(e)}` });
  }
  const verdict = await checkTeeSignature(leaf, ctx.teeKeys, ev?.entry ? ev.key : undefined);
  const detail = describeTeeVerdict(verdict, leaf.teeId);
  const signature: Judgment = verdict.status === "valid" ? { status: "pass", detail } : verdict.status === "absent" ? noTee(setup, detail) : { status: "fail", detail };
  return {
    "tee-registered": judgeRegistered(setup, ev, anchorBlock),
    "tee-attestation": judgeAttestation(setup, ev),
    "tee-measurement": judgeMeasurement(setup, ev, anchorBlock),
    "tee-signature": signature,
  };
}

/** The report entries of one leaf. */
export function leafTrustChecks(trust: LeafTrust): CheckResult[] {
  return TRUST_CHECKS.map((name) => result(name, trust[name]));
}

/** The report entries of a whole batch: a check fails when any leaf fails it, passes when any passes and none fails. */
export function batchTrustChecks(leaves: readonly LeafTrust[]): CheckResult[] {
  return TRUST_CHECKS.map((name) => {
    const judged = leaves.map((l) => l[name]);
    const failed = judged.flatMap((j, i) => (j.status === "fail" ? [`leaf #${i}: ${j.detail}`] : []));
    if (failed.length) return fail(name, `${failed.length} of ${leaves.length} leaves fail: ${failed.slice(0, 3).join("; ")}`);
    const passed = judged.filter((j) => j.status === "pass").length;
    if (passed === 0) return notApplicable(name, judged[0]?.detail ?? "no leaves");
    const what = name === "tee-signature" ? "signed leaves verify" : "leaves pass";
    return pass(name, `${passed} ${what}${passed < leaves.length ? `, ${leaves.length - passed} carry none` : ""}${passed === 1 ? `: ${judged.find((j) => j.status === "pass")!.detail}` : ""}`);
  });
}

/** An individual settlement event names hashes only: nothing on chain says which TEE, if any, produced them. */
export function settlementTrustChecks(setup: TeeTrustSetup): CheckResult[] {
  return leafTrustChecks(every(noTee(setup, "an individual settlement event records no TEE data on chain")));
}
