import { describe, expect, it } from "vitest";
import type { Hex } from "viem";
import { generateGatewayKey, measurementOf, NONCE_NOT_CHECKED, TeeType, TestAuthority, testPcrs } from "./index.ts";
import { ATTESTATION_VERIFIERS, teeTypeName, teeTypeOfSlug, verifierFor } from "./verifiers.ts";

describe("attestation verifiers by TEE type", () => {
  it.each<[string, () => unknown, unknown]>([
    ["AWS Nitro by its registry value", () => verifierFor(TeeType.AwsNitro)?.slug, "aws-nitro"],
    ["no verifier for a type not plugged in (Intel TDX would be the next)", () => verifierFor(2), undefined],
    ["the registration slug of Nitro", () => teeTypeOfSlug("aws-nitro"), TeeType.AwsNitro],
    ["no slug for TDX yet", () => teeTypeOfSlug("intel-tdx"), undefined],
    ["Nitro's name for people", () => teeTypeName(TeeType.AwsNitro), "AWS Nitro"],
    ["an unknown type's name", () => teeTypeName(7), "TEE type 7"],
    ["one verifier today", () => [...ATTESTATION_VERIFIERS.keys()], [TeeType.AwsNitro]],
  ])("%s", (_name, run, expected) => {
    expect(run()).toEqual(expected);
  });

  it("Nitro's verifier answers the shared shape: measurement, its PCRs by name, root, document hash", async () => {
    const authority = await TestAuthority.create();
    const key = generateGatewayKey();
    const pcrs = testPcrs("verifier-image");
    const measurement = measurementOf(...(Object.values(pcrs) as [Hex, Hex, Hex]));
    const document = await authority.attest({ signingKey: key.publicKey, pcrs });
    const opts = { roots: [authority.rootPem], nonce: NONCE_NOT_CHECKED, expectedKey: key.publicKey, now: new Date() };
    const verdict = await verifierFor(TeeType.AwsNitro)!.verify(document, { ...opts, approvedMeasurements: (m) => m.hash === measurement.hash });
    expect(verdict).toMatchObject({ ok: true, attestation: { teeType: "aws-nitro", measurement: { hash: measurement.hash }, registers: { PCR0: measurement.pcr0, PCR1: measurement.pcr1, PCR2: measurement.pcr2 } } });
    const refused = await verifierFor(TeeType.AwsNitro)!.verify(document, { ...opts, approvedMeasurements: new Set<string>() });
    expect(refused).toMatchObject({ ok: false, reason: "attestation_measurement_not_approved" });
  });
});
