import { compactDump, packValues } from "@facilitator/merkle";
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { describe, expect, it } from "vitest";
import { keccak256, toHex } from "viem";
import { findLeaf, parseBatchDump, toLeaf } from "./dump.ts";
import { DUMP_FORMAT, DUMP_FORMAT_V1, LEAF_TYPES_V1, LEAF_TYPES_V2, ZERO_BYTES32 } from "./formats.ts";
import { leafHash } from "./merkle.ts";

const h = (s: string) => keccak256(toHex(s));
const values = [
  [ZERO_BYTES32, h("in0"), h("out0"), "1700000000", "settle-batch", ZERO_BYTES32, "0x"],
  [h("tee"), h("in1"), h("out1"), "1700000001", "settle-batch", ZERO_BYTES32, `0x${"11".repeat(65)}`],
];
const tree = StandardMerkleTree.of(values, [...LEAF_TYPES_V2]);
const dump = {
  format: DUMP_FORMAT,
  leafEncoding: ["bytes32 teeId", "bytes32 inputHash", "bytes32 outputHash", "uint256 timestamp", "string settlementType", "bytes32 metadataHash", "bytes teeSignature"],
  tree: tree.dump(),
  recordIds: ["0xaa", "0xbb"],
  createdAt: "2025-01-01T00:00:00.000Z",
};
/** A dump written before leaf encoding v2 (format /1): still read. */
const treeV1 = StandardMerkleTree.of(values.map((v) => [v[0], v[1], v[2], v[3], v[6]]), [...LEAF_TYPES_V1]);
const dumpV1 = {
  format: DUMP_FORMAT_V1,
  leafEncoding: ["bytes32 teeId", "bytes32 inputHash", "bytes32 outputHash", "uint256 timestamp", "bytes teeSignature"],
  tree: treeV1.dump(),
  recordIds: ["0xaa", "0xbb"],
};
const bytes = (v: unknown) => new TextEncoder().encode(typeof v === "string" ? v : JSON.stringify(v));
const mutate = (f: (d: any) => void) => {
  const copy = structuredClone(dump) as any;
  f(copy);
  return copy;
};

describe("parseBatchDump", () => {
  it("reads a genuine dump: leaves in value order, their slots and record ids", () => {
    const parsed = parseBatchDump(bytes(dump));
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.value.leaves.map((l) => l.inputHash)).toEqual([h("in0"), h("in1")]);
    expect(parsed.value.treeIndices).toEqual(tree.dump().values.map((v) => v.treeIndex));
    expect(parsed.value.recordIds).toEqual(["0xaa", "0xbb"]);
    expect(parsed.value.leaves[1]!.timestamp).toBe(1_700_000_001n);
    expect(findLeaf(parsed.value, h("in1"), h("out1"))).toBe(1);
    expect(findLeaf(parsed.value, h("in1").toUpperCase().replace("0X", "0x") as `0x${string}`, h("out1"))).toBe(1);
    expect(findLeaf(parsed.value, h("in1"), h("out0"))).toBe(-1);
    expect(parsed.value.version).toBe(2);
    expect(parsed.value.leaves[1]).toMatchObject({ version: 2, settlementType: "settle-batch", metadataHash: ZERO_BYTES32 });
    expect(tree.dump().tree).toContain(leafHash(parsed.value.leaves[1]!));
  });

  it("still reads a v1 dump, as leaves of version 1", () => {
    const parsed = parseBatchDump(bytes(dumpV1));
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.value.version).toBe(1);
    expect(parsed.value.leaves[1]).toEqual({ version: 1, teeId: h("tee"), inputHash: h("in1"), outputHash: h("out1"), timestamp: 1_700_000_001n, teeSignature: `0x${"11".repeat(65)}` });
    expect(treeV1.dump().tree).toContain(leafHash(parsed.value.leaves[1]!));
    expect(parseBatchDump(bytes({ ...dumpV1, tree: tree.dump() }))).toMatchObject({ ok: false, error: expect.stringMatching(/is not v1/) });
  });

  it.each([
    ["bytes that are not UTF-8", new Uint8Array([0xff, 0xfe, 0x00]), /not UTF-8 JSON/],
    ["JSON that is not an object", bytes("[1,2]"), /not a JSON object/],
    ["another format", bytes(mutate((d) => (d.format = "x402-inference-batch/3"))), /unknown dump format/],
    ["a missing tree", bytes(mutate((d) => delete d.tree)), /no StandardMerkleTree dump/],
    ["another leaf encoding", bytes(mutate((d) => (d.tree.leafEncoding = ["bytes32", "bytes32"]))), /is not v2/],
    ["no leaves", bytes(mutate((d) => (d.tree.values = []))), /no leaves/],
    ["a short hash", bytes(mutate((d) => (d.tree.values[0].value[1] = "0x1234"))), /leaf #0: inputHash is not 32-byte hex/],
    ["a six-field leaf", bytes(mutate((d) => d.tree.values[1].value.pop())), /leaf #1: expected 7 fields/],
    ["a v1 dump's declared encoding under the v2 format", bytes(mutate((d) => (d.leafEncoding = dumpV1.leafEncoding))), /declares leaf encoding/],
    ["a settlement type that is not a string", bytes(mutate((d) => (d.tree.values[0].value[4] = 1))), /settlementType is not a string/],
    ["a short metadata hash", bytes(mutate((d) => (d.tree.values[0].value[5] = "0x00"))), /metadataHash is not 32-byte hex/],
    ["a timestamp that is not a number", bytes(mutate((d) => (d.tree.values[0].value[3] = "soon"))), /timestamp is not an integer/],
    ["another declared leaf encoding", bytes(mutate((d) => (d.leafEncoding = ["bytes32", "bytes32", "bytes32", "uint256", "bytes"]))), /declares leaf encoding/],
    ["record ids that do not match the leaves", bytes(mutate((d) => d.recordIds.pop())), /one record id per leaf/],
    ["a value without its tree index", bytes(mutate((d) => delete d.tree.values[0].treeIndex)), /leaf #0 is not \{value, treeIndex\}/],
  ])("refuses %s", (_name, input, error) => {
    const parsed = parseBatchDump(input);
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.error).toMatch(error);
  });
});

describe("parseBatchDump of a compact dump (large batches: packed values, no nodes)", () => {
  const compact = { ...dump, tree: compactDump([...LEAF_TYPES_V2], values) };
  const withTree = (tree: object) => bytes({ ...compact, tree: { ...compact.tree, ...tree } });

  it("reads the same leaves as the standard dump of the same batch, and no claimed slots", () => {
    const parsed = parseBatchDump(bytes(compact));
    const standard = parseBatchDump(bytes(dump));
    expect(parsed.ok && standard.ok).toBe(true);
    if (!parsed.ok || !standard.ok) return;
    expect(parsed.value.leaves).toEqual(standard.value.leaves);
    expect(parsed.value.treeIndices).toBeUndefined();
    expect(Buffer.from(parsed.value.leafHashes!).toString("hex")).toBe(parsed.value.leaves.map((l) => leafHash(l).slice(2)).join(""));
    expect(standard.value.leafHashes).toBeUndefined();
    expect(parsed.value.recordIds).toEqual(["0xaa", "0xbb"]);
  });

  it.each([
    ["values that are not base64", withTree({ values: "!!!!" }), /tree.values is not base64/],
    ["a count the values do not fill", withTree({ length: 3 }), /tree.values does not unpack: leaf #2 field 0: the packed values end early/],
    ["bytes after the last leaf", withTree({ values: Buffer.concat([packValues([...LEAF_TYPES_V2], values), Buffer.from([0, 0, 0])]).toString("base64") }), /3 bytes follow the last leaf/],
    ["no leaves", withTree({ length: 0, values: "" }), /no leaves/],
    ["record ids that do not match the leaves", bytes({ ...compact, recordIds: ["0xaa"] }), /one record id per leaf/],
    ["a leaf encoding of another version", withTree({ leafEncoding: [...LEAF_TYPES_V1] }), /is not v2/],
  ])("refuses %s", (_name, input, error) => {
    const parsed = parseBatchDump(input);
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.error).toMatch(error);
  });
});

describe("toLeaf", () => {
  it.each([
    ["an odd-length signature", [ZERO_BYTES32, h("a"), h("b"), "1", "settle-batch", ZERO_BYTES32, "0xabc"], /teeSignature is not hex bytes/],
    ["a negative timestamp", [ZERO_BYTES32, h("a"), h("b"), "-1", "settle-batch", ZERO_BYTES32, "0x"], /out of uint256 range/],
    ["a timestamp above uint256", [ZERO_BYTES32, h("a"), h("b"), (2n ** 256n).toString(), "settle-batch", ZERO_BYTES32, "0x"], /out of uint256 range/],
    ["an empty timestamp", [ZERO_BYTES32, h("a"), h("b"), "", "settle-batch", ZERO_BYTES32, "0x"], /not an integer/],
    ["a v1 leaf read as v2", [ZERO_BYTES32, h("a"), h("b"), "1", "0x"], /expected 7 fields, found 5/],
  ])("refuses %s", (_name, value, error) => {
    expect(toLeaf(value)).toMatch(error);
  });

  it("normalises hex to lower case", () => {
    const upper = `0x${h("a").slice(2).toUpperCase()}`;
    expect(toLeaf([ZERO_BYTES32, upper, h("b"), "5", "settle-batch", ZERO_BYTES32, "0xAB"])).toEqual({
      version: 2,
      teeId: ZERO_BYTES32,
      inputHash: h("a"),
      outputHash: h("b"),
      timestamp: 5n,
      settlementType: "settle-batch",
      metadataHash: ZERO_BYTES32,
      teeSignature: "0xab",
    });
    expect(toLeaf([ZERO_BYTES32, upper, h("b"), "5", "0xAB"], 1)).toEqual({ version: 1, teeId: ZERO_BYTES32, inputHash: h("a"), outputHash: h("b"), timestamp: 5n, teeSignature: "0xab" });
  });
});
