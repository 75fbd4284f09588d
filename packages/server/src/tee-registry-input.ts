/**
 * What the registry admin types for `pnpm tee-registry`: a measurement (its hash, three PCRs, or
 * nitro-cli's JSON) and a TEE type. Pure: each answer is a value or an error sentence.
 */
import type { Hex } from "viem";
import { measurementOf, TeeType, teeTypeOfSlug, unsupportedTeeType, type Measurement } from "@facilitator/tee";

export interface MeasurementInput {
  /** What the registry approves and revokes. */
  hash: Hex;
  /** When given as PCRs: the three values, for the record. */
  pcrs?: Omit<Measurement, "hash">;
}

export type Parsed<T> = ({ ok: true } & T) | { ok: false; error: string };

export interface MeasurementFlags {
  measurement?: string;
  pcr0?: string;
  pcr1?: string;
  pcr2?: string;
  /** The content of a --pcrs file: nitro-cli build-enclave's or describe-eif's JSON ({Measurements: {PCR0, PCR1, PCR2}}). */
  pcrsJson?: string;
}

const BYTES32 = /^0x[0-9a-fA-F]{64}$/;
/** nitro-cli prints PCRs as bare hex; 0x is accepted too. */
const hex = (s: string): Hex => (s.trim().startsWith("0x") ? s.trim() : `0x${s.trim()}`).toLowerCase() as Hex;

export function parseMeasurementInput(f: MeasurementFlags): Parsed<MeasurementInput> {
  const given = [f.measurement !== undefined, [f.pcr0, f.pcr1, f.pcr2].some((p) => p !== undefined), f.pcrsJson !== undefined].filter(Boolean).length;
  if (given === 0) return { ok: false, error: "a measurement is needed: --measurement 0x.., --pcr0 --pcr1 --pcr2, or --pcrs FILE" };
  if (given > 1) return { ok: false, error: "give the measurement one way only: --measurement, --pcr0/1/2 or --pcrs" };
  if (f.measurement !== undefined) {
    return BYTES32.test(f.measurement) && !/^0x0{64}$/.test(f.measurement) ? { ok: true, hash: f.measurement.toLowerCase() as Hex } : { ok: false, error: "--measurement must be a non-zero 0x-prefixed 32-byte hash" };
  }
  let pcrs: unknown[] = [f.pcr0, f.pcr1, f.pcr2];
  if (f.pcrsJson !== undefined) {
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(f.pcrsJson) as Record<string, unknown>;
    } catch {
      return { ok: false, error: "--pcrs: the file is not JSON (nitro-cli build-enclave's or describe-eif's output)" };
    }
    const m = (typeof json?.Measurements === "object" && json.Measurements !== null ? json.Measurements : json) as Record<string, unknown>;
    pcrs = [m.PCR0, m.PCR1, m.PCR2];
  }
  const missing = pcrs.findIndex((p) => typeof p !== "string");
  if (missing >= 0) return { ok: false, error: `PCR${missing} is missing: all of PCR0, PCR1 and PCR2 are needed` };
  try {
    const { hash, ...values } = measurementOf(...(pcrs.map((p) => hex(p as string)) as [Hex, Hex, Hex]));
    return { ok: true, hash, pcrs: values };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

export function parseTeeType(slug: string | undefined): Parsed<{ value: TeeType }> {
  if (slug === undefined) return { ok: true, value: TeeType.AwsNitro };
  const value = teeTypeOfSlug(slug);
  if (value !== undefined) return { ok: true, value };
  return { ok: false, error: unsupportedTeeType("--tee-type") };
}
