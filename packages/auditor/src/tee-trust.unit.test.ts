import { describe, expect, it } from "vitest";
import { keccak256, toHex, type Hex } from "viem";
import { generateGatewayKey, inferenceMessageHash, MeasurementStatus, signRsaPss } from "@facilitator/tee";
import type { InferenceLeaf } from "./formats.ts";
import { checkTeeSignature, describeTeeVerdict } from "./tee.ts";
import { judgeAttestation, judgeMeasurement, judgeRegistered, type TeeEvidence, type TeeTrustSetup } from "./tee-trust.ts";

const registry = "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0";
const required: TeeTrustSetup = { registry, roots: [], requireAttested: true };
const optional: TeeTrustSetup = { ...required, requireAttested: false };
const none: TeeTrustSetup = { roots: [], requireAttested: false };
const teeId = keccak256(toHex("tee"));
const measurement = keccak256(toHex("image"));
const entry = {
  signingKey: "0x01" as Hex,
  scheme: 0,
  teeType: 1,
  registeredBlock: 10n,
  registeredAt: 1_700_000_000n,
  revokedBlock: 0n,
  measurement,
  attestationHash: keccak256("0x02"),
  attestationBlobId: "blob",
};
const approved = { status: MeasurementStatus.Approved, approvedBlock: 5n, revokedBlock: 0n };
const ev = (over: Partial<TeeEvidence> = {}): TeeEvidence => ({ teeId, entry, measurement: approved, attestation: { ok: true, rootSha256: "ab".repeat(32), registers: { PCR0: `0x${"00".repeat(48)}` } }, ...over });

describe("trust judgments", () => {
  it.each<[string, () => ReturnType<typeof judgeRegistered>, string, RegExp]>([
    ["registered before the anchor", () => judgeRegistered(required, ev(), 20n), "pass", /registered at block 10, before the anchor \(block 20\)/],
    ["registered in the anchor's block", () => judgeRegistered(required, ev(), 10n), "pass", /block 10/],
    ["registered after the anchor", () => judgeRegistered(required, ev(), 9n), "fail", /registered at block 10, after the record was anchored \(block 9\) \(attestation is required\)/],
    ["registered after, attestation not required", () => judgeRegistered(optional, ev(), 9n), "n/a", /after the record was anchored/],
    ["never registered", () => judgeRegistered(required, { teeId }, 20n), "fail", /never registered/],
    ["no registry configured", () => judgeRegistered(none, undefined, 20n), "n/a", /no TEE registry is configured/],
    ["an attestation that verifies", () => judgeAttestation(required, ev()), "pass", /matches the registry's hash and chains to the root abab/],
    ["a blob that does not match the registry's hash", () => judgeAttestation(optional, ev({ attestation: { ok: false, detail: "blob blob hashes to 0x.., not to the registry's attestation hash" } })), "fail", /not to the registry's attestation hash/],
    ["a measurement approved before the anchor", () => judgeMeasurement(required, ev(), 20n), "pass", /approved at block 5/],
    ["a measurement approved after the anchor", () => judgeMeasurement(required, ev(), 4n), "fail", /was not approved at the anchoring block 4/],
    ["a measurement revoked before the anchor", () => judgeMeasurement(optional, ev({ measurement: { ...approved, status: MeasurementStatus.Revoked, revokedBlock: 15n } }), 20n), "fail", /revoked at block 15, before the anchor/],
    ["a measurement revoked after the anchor", () => judgeMeasurement(required, ev({ measurement: { ...approved, status: MeasurementStatus.Revoked, revokedBlock: 25n } }), 20n), "pass", /revoked later, at block 25/],
    ["a TEE revoked before the anchor", () => judgeMeasurement(required, ev({ entry: { ...entry, revokedBlock: 12n } }), 20n), "fail", /was revoked at block 12/],
  ])("%s -> %s", (_name, judge, status, detail) => {
    const j = judge();
    expect(j.status).toBe(status);
    expect(j.detail).toMatch(detail);
  });
});

describe("gateway leaves", () => {
  const gw = generateGatewayKey();
  const leaf = (signer = gw, ts = 1_700_000_000n): InferenceLeaf => {
    const inputHash = keccak256(toHex("in"));
    const outputHash = keccak256(toHex("out"));
    return { version: "gateway", teeId: gw.teeId, inputHash, outputHash, timestamp: 1_700_000_000n, teeSignature: toHex(Buffer.from(signRsaPss(signer.privateKeyPem, inferenceMessageHash(inputHash, outputHash, ts)), "base64")) };
  };
  const rsa = { scheme: "rsa-pss-sha256" as const, publicKey: gw.publicKey };

  it.each<[string, () => Promise<Awaited<ReturnType<typeof checkTeeSignature>>>, string, RegExp]>([
    ["the attested RSA key's signature", () => checkTeeSignature(leaf(), {}, rsa), "valid", /signed \(RSA-PSS\) by the RSA key registered/],
    ["another key's signature", () => checkTeeSignature(leaf(generateGatewayKey()), {}, rsa), "wrong-key", /not under the key registered/],
    ["a signature over another time", () => checkTeeSignature(leaf(gw, 1n), {}, rsa), "wrong-key", /not under the key registered/],
    ["no registry key (TEE_KEYS cannot hold RSA keys)", () => checkTeeSignature(leaf(), {}), "unknown-tee", /--tee-registry/],
    ["a secp256k1 TEE's id", () => checkTeeSignature(leaf(), {}, { scheme: "secp256k1-eip712", address: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8" }), "wrong-key", /registered with a secp256k1 key/],
  ])("%s -> %s", async (_name, check, status, detail) => {
    const verdict = await check();
    expect(verdict.status).toBe(status);
    expect(describeTeeVerdict(verdict, gw.teeId)).toMatch(detail);
  });
});
