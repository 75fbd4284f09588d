import { describe, expect, it } from "vitest";
import { measurementOf, TeeType, testPcrs } from "@facilitator/tee";
import { parseMeasurementInput, parseTeeType, type MeasurementFlags } from "./tee-registry-input.ts";

const pcrs = testPcrs("admin-image");
const want = measurementOf(pcrs[0], pcrs[1], pcrs[2]);
const bare = (h: string) => h.slice(2).toUpperCase(); // as nitro-cli prints them
const buildJson = JSON.stringify({ Measurements: { HashAlgorithm: "Sha384 { ... }", PCR0: bare(pcrs[0]), PCR1: bare(pcrs[1]), PCR2: bare(pcrs[2]) } });

describe("parseMeasurementInput", () => {
  it.each<[string, MeasurementFlags]>([
    ["the measurement hash itself", { measurement: want.hash.toUpperCase().replace("0X", "0x") }],
    ["three PCRs with 0x", { pcr0: pcrs[0], pcr1: pcrs[1], pcr2: pcrs[2] }],
    ["three PCRs as nitro-cli prints them", { pcr0: bare(pcrs[0]), pcr1: bare(pcrs[1]), pcr2: bare(pcrs[2]) }],
    ["nitro-cli build-enclave's JSON", { pcrsJson: buildJson }],
    ["a JSON object of PCRs alone", { pcrsJson: JSON.stringify({ PCR0: pcrs[0], PCR1: pcrs[1], PCR2: pcrs[2] }) }],
  ])("reads %s", (_name, flags) => {
    expect(parseMeasurementInput(flags)).toMatchObject({ ok: true, hash: want.hash });
  });

  it.each<[string, MeasurementFlags, RegExp]>([
    ["nothing", {}, /a measurement is needed/],
    ["two ways at once", { measurement: want.hash, pcr0: pcrs[0] }, /one way only/],
    ["a short hash", { measurement: "0x1234" }, /32-byte hash/],
    ["the zero hash", { measurement: `0x${"0".repeat(64)}` }, /non-zero/],
    ["two PCRs of three", { pcr0: pcrs[0], pcr1: pcrs[1] }, /PCR2 is missing/],
    ["a PCR of SHA-256 size", { pcr0: `0x${"ab".repeat(32)}`, pcr1: pcrs[1], pcr2: pcrs[2] }, /PCR0 must be 48 bytes/],
    ["a PCR that is not hex", { pcr0: "zz".repeat(48), pcr1: pcrs[1], pcr2: pcrs[2] }, /PCR0 must be 48 bytes/],
    ["a file that is not JSON", { pcrsJson: "PCR0: ..." }, /not JSON/],
    ["JSON without PCR1", { pcrsJson: JSON.stringify({ Measurements: { PCR0: pcrs[0], PCR2: pcrs[2] } }) }, /PCR1 is missing/],
  ])("refuses %s", (_name, flags, error) => {
    const parsed = parseMeasurementInput(flags);
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.error).toMatch(error);
  });
});

describe("parseTeeType", () => {
  it.each<[string | undefined, unknown]>([
    [undefined, { ok: true, value: TeeType.AwsNitro }],
    ["aws-nitro", { ok: true, value: TeeType.AwsNitro }],
    ["intel-tdx", { ok: false, error: "--tee-type must be one of aws-nitro (Intel TDX is not supported yet)" }],
  ])("%s", (slug, expected) => {
    expect(parseTeeType(slug)).toEqual(expected);
  });
});
