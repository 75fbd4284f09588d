import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compactBytes, compactDump, hashPackedLeaves, packValues, unpackValues } from "./compact.ts";
import { keccakReady } from "./keccak.ts";
import { batchValuesV2, TYPES_V1, TYPES_V2 } from "./testing/values.ts";
import { hashLeaves } from "./tree.ts";

await keccakReady;

const hex = (b: Uint8Array) => `0x${Buffer.from(b).toString("hex")}`;
const FIELD: Record<string, fc.Arbitrary<string>> = {
  bytes32: fc.uint8Array({ minLength: 32, maxLength: 32 }).map(hex),
  address: fc.uint8Array({ minLength: 20, maxLength: 20 }).map(hex),
  bytes: fc.uint8Array({ maxLength: 70 }).map(hex),
  string: fc.string({ unit: "grapheme", maxLength: 20 }),
  uint256: fc.bigInt({ min: 0n, max: 2n ** 256n - 1n }).map(String),
};
const LAYOUTS = [TYPES_V2, TYPES_V1, ["address", "uint256", "string", "bytes"]];

describe("compact-v1 packing", () => {
  it.each(LAYOUTS)("round-trips values and hashes them as the standard leaf hash (%s, ...)", (...types) => {
    fc.assert(
      fc.property(fc.array(fc.tuple(...types.map((t) => FIELD[t]!)), { minLength: 1, maxLength: 30 }), (values) => {
        const packed = packValues(types, values);
        expect(unpackValues(types, packed, values.length)).toEqual({ ok: true, values });
        expect(hashPackedLeaves(types, packed, values.length).equals(hashLeaves(types, values))).toBe(true);
      }),
      { numRuns: 40 },
    );
  });

  it("lays fields out as documented", () => {
    const value = [`0x${"11".repeat(20)}`, "256", "ab", "0xc0ffee"];
    const expected = ["11".repeat(20), "02", "0100", "00000002", "6162", "00000003", "c0ffee"].join("");
    expect(packValues(["address", "uint256", "string", "bytes"], [value]).toString("hex")).toBe(expected);
    expect(packValues(["uint256"], [["0"]]).toString("hex")).toBe("00");
    // Upper-case hex and 0x uint256s pack to the one canonical form.
    expect(unpackValues(["bytes32", "uint256"], packValues(["bytes32", "uint256"], [[`0x${"AB".repeat(32)}`, "0x10"]]), 1)).toEqual({ ok: true, values: [[`0x${"ab".repeat(32)}`, "16"]] });
  });

  it.each([
    ["the bytes end early", "0201", 1, /end early/],
    ["bytes follow the last leaf", "010500", 1, /1 bytes follow the last leaf/],
    ["a uint256 with a leading zero byte", "020001", 1, /not minimally packed/],
    ["a uint256 longer than 32 bytes", `21${"01".repeat(33)}`, 1, /not minimally packed/],
  ] as const)("refuses packed values where %s", (_name, packedHex, length, error) => {
    const packed = Buffer.from(packedHex, "hex");
    expect(unpackValues(["uint256"], packed, length)).toMatchObject({ ok: false, error: expect.stringMatching(error) });
    expect(() => hashPackedLeaves(["uint256"], packed, length)).toThrow(error);
  });

  it("refuses a string that is not UTF-8", () => {
    expect(unpackValues(["string"], Buffer.from("00000001ff", "hex"), 1)).toMatchObject({ ok: false, error: expect.stringMatching(/not UTF-8/) });
  });

  it("refuses values the leaf type cannot hold", () => {
    expect(() => packValues(["bytes32"], [["0x12"]])).toThrow(/leaf #0: field 0 \(bytes32\)/);
    expect(() => packValues(["bytes32", "uint256"], [[`0x${"00".repeat(32)}`]])).toThrow(/needs 2 fields/);
  });
});

describe("compact dumps", () => {
  it("hold the leaf encoding, the count and the packed values as strict base64", () => {
    const values = batchValuesV2(5);
    const dump = compactDump(TYPES_V2, values);
    expect(dump).toMatchObject({ format: "compact-v1", leafEncoding: TYPES_V2, length: 5 });
    const bytes = compactBytes(dump.values)!;
    expect(unpackValues(TYPES_V2, bytes, 5)).toEqual({ ok: true, values });
    expect(compactBytes(`${dump.values.slice(0, 8)}\n${dump.values.slice(8)}`)).toBeUndefined();
    expect(compactBytes("AB=C")).toBeUndefined();
    expect(compactBytes("AB==AB==")).toBeUndefined();
    expect(compactBytes(`${dump.values.slice(0, 8)}-_${dump.values.slice(10)}`)).toBeUndefined(); // the URL-safe alphabet
    expect(compactBytes(`${dump.values.slice(0, 8)}!${dump.values.slice(9)}`)).toBeUndefined();
    expect(compactBytes("")).toEqual(Buffer.alloc(0));
    expect(compactBytes(7)).toBeUndefined();
  });
});
