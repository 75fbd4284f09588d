import { afterAll, describe, expect, it } from "vitest";
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { encodeAbiParameters, keccak256, concat, toHex, type Hex } from "viem";
import { keccakReady, stopTreeThread } from "@facilitator/merkle";
import {
  buildBatchTree,
  buildBatchTreeOffThread,
  LEAF_ENCODING_V2,
  LEAF_TYPES_V2,
  leafValue,
  loadBatchDump,
  siblingPath,
  verifyLeafProof,
  ZERO_BYTES32,
  type BatchDump,
} from "./merkle.ts";
import type { InferenceRecord } from "./records.ts";

const h = (s: string): Hex => keccak256(toHex(s));
const recs: InferenceRecord[] = Array.from({ length: 5 }, (_, i) => ({
  inputHash: h(`in${i}`),
  outputHash: h(`out${i}`),
  settlementType: "settle-batch",
  ...(i % 2 ? { teeId: h("tee"), teeTimestamp: String(1000 + i), teeSignature: `0x${"ab".repeat(65)}` as Hex } : {}),
}));
const ids = recs.map((_, i) => `id-${i}`);
const createdAt = "2025-01-01T00:00:00.000Z";

describe("leaf encoding v2", () => {
  it("holds every attested field, with zero values for absent TEE fields and metadata", () => {
    expect(leafValue(recs[0]!)).toEqual([ZERO_BYTES32, h("in0"), h("out0"), "0", "settle-batch", ZERO_BYTES32, "0x"]);
    expect(leafValue(recs[1]!)).toEqual([h("tee"), h("in1"), h("out1"), "1001", "settle-batch", ZERO_BYTES32, `0x${"ab".repeat(65)}`]);
    expect(LEAF_TYPES_V2).toEqual(["bytes32", "bytes32", "bytes32", "uint256", "string", "bytes32", "bytes"]);
  });

  it("hashes leaves as keccak256(keccak256(abi.encode(teeId, inputHash, outputHash, timestamp, settlementType, metadataHash, teeSignature)))", () => {
    const tree = buildBatchTree(recs, ids, createdAt);
    const v = leafValue(recs[1]!);
    const inner = keccak256(encodeAbiParameters(LEAF_ENCODING_V2.map((f) => ({ type: f.split(" ")[0]! })), [v[0], v[1], v[2], BigInt(v[3]), v[4], v[5], v[6]]));
    expect(tree.leafHash(v)).toBe(keccak256(concat([inner])));
  });
});

describe("batch trees and dumps", () => {
  it("are deterministic: the same batch gives the same bytes and root", () => {
    const a = buildBatchTree(recs, ids, createdAt);
    const b = buildBatchTree(recs, ids, createdAt);
    expect(a.dumpJson).toBe(b.dumpJson);
    expect(a.root).toBe(b.root);
    expect(buildBatchTree(recs, ids, "2025-01-01T00:00:00.001Z").root).toBe(a.root);
    expect(buildBatchTree(recs.slice(1), ids.slice(1), createdAt).root).not.toBe(a.root);
  });

  it("give proofs that verify with OpenZeppelin's verifier and fail for a changed record", () => {
    const t = buildBatchTree(recs, ids, createdAt);
    recs.forEach((r, i) => {
      expect(verifyLeafProof(t.root, r, t.proof(i))).toBe(true);
      expect(StandardMerkleTree.verify(t.root, ["bytes32", "bytes32", "bytes32", "uint256", "string", "bytes32", "bytes"], leafValue(r), t.proof(i))).toBe(true);
    });
    expect(verifyLeafProof(t.root, { ...recs[1]!, teeTimestamp: "1002" }, t.proof(1))).toBe(false);
    expect(verifyLeafProof(t.root, recs[2]!, t.proof(1))).toBe(false);
    expect(verifyLeafProof(t.root, { ...recs[1]!, settlementType: "settle" }, t.proof(1))).toBe(false);
  });

  it("round-trip through the versioned dump, which names each record's id", () => {
    const t = buildBatchTree(recs, ids, createdAt);
    const { dump, root } = loadBatchDump(new TextEncoder().encode(t.dumpJson));
    expect(root).toBe(t.root);
    expect(dump).toMatchObject({ format: "x402-inference-batch/2", leafEncoding: [...LEAF_ENCODING_V2], recordIds: ids, createdAt });
    expect(dump.tree.values[3]!.value).toEqual(leafValue(recs[3]!));
  });

  it("are StandardMerkleTree's dump, byte for byte", () => {
    const t = buildBatchTree(recs, ids, createdAt);
    expect(JSON.stringify((JSON.parse(t.dumpJson) as BatchDump).tree)).toBe(JSON.stringify(StandardMerkleTree.of(recs.map(leafValue), LEAF_TYPES_V2).dump()));
  });

  it("refuse a dump whose values were changed after the tree was built", () => {
    const t = buildBatchTree(recs, ids, createdAt);
    const dump = JSON.parse(t.dumpJson);
    dump.tree.values[0].value[2] = h("forged");
    expect(() => loadBatchDump(JSON.stringify(dump))).toThrow();
    expect(() => loadBatchDump(JSON.stringify({ ...JSON.parse(t.dumpJson), format: "other/1" }))).toThrow(/format/);
    expect(() => loadBatchDump(JSON.stringify({ ...JSON.parse(t.dumpJson), recordIds: ids.slice(1) }))).toThrow(/recordIds/);
  });
});

describe("siblingPath", () => {
  it("gives the same proof as the library's getProof for every leaf", () => {
    for (const size of [1, 2, 3, 7, 16, 33]) {
      const values = Array.from({ length: size }, (_, i) => [`0x${(i + 1).toString(16).padStart(64, "0")}`]);
      const tree = StandardMerkleTree.of(values, ["bytes32"]);
      const dump = tree.dump();
      for (let i = 0; i < size; i++) expect(siblingPath(dump.tree as `0x${string}`[], dump.values[i]!.treeIndex)).toEqual(tree.getProof(i));
    }
  });
});

describe("compact dumps", () => {
  afterAll(stopTreeThread);
  const many: InferenceRecord[] = Array.from({ length: 40 }, (_, i) => ({ ...recs[i % 5]!, inputHash: h(`many${i}`) }));
  const manyIds = many.map((_, i) => `id-${i}`);

  it("are written above compactAbove records, and load as the standard dump they stand for", () => {
    expect(JSON.parse(buildBatchTree(many, manyIds, createdAt, { compactAbove: 40 }).dumpJson).tree.format).toBe("standard-v1");
    const standard = buildBatchTree(many, manyIds, createdAt, { compactAbove: 40 });
    const compact = buildBatchTree(many, manyIds, createdAt, { compactAbove: 39 });
    expect(compact.root).toBe(standard.root);
    expect(JSON.parse(compact.dumpJson)).toMatchObject({ format: "x402-inference-batch/2", tree: { format: "compact-v1", leafEncoding: LEAF_TYPES_V2, length: 40 }, recordIds: manyIds, createdAt });
    expect(compact.dumpJson.length).toBeLessThan(standard.dumpJson.length / 2);
    const loaded = loadBatchDump(compact.dumpJson);
    expect(loaded).toMatchObject({ root: standard.root, stored: "compact-v1" });
    expect(loaded.dump).toEqual(JSON.parse(standard.dumpJson));
    many.forEach((r, i) => expect(verifyLeafProof(compact.root, r, compact.proof(i))).toBe(true));
  });

  it("refuse compact values that were changed or do not unpack", () => {
    const dump = JSON.parse(buildBatchTree(many, manyIds, createdAt, { compactAbove: 0 }).dumpJson);
    const packed = Buffer.from(dump.tree.values, "base64");
    packed[40] = packed[40]! ^ 1; // a byte of the first leaf's inputHash
    const forged = loadBatchDump(JSON.stringify({ ...dump, tree: { ...dump.tree, values: packed.toString("base64") } }));
    expect(forged.root).not.toBe(buildBatchTree(many, manyIds, createdAt).root);
    expect(() => loadBatchDump(JSON.stringify({ ...dump, tree: { ...dump.tree, length: 41 } }))).toThrow(/recordIds/);
    expect(() => loadBatchDump(JSON.stringify({ ...dump, tree: { ...dump.tree, values: "not base64!" } }))).toThrow(/not base64/);
    expect(() => loadBatchDump(JSON.stringify({ ...dump, tree: { ...dump.tree, values: packed.subarray(1).toString("base64") } }))).toThrow(/compact tree's values/);
  });

  it("are built the same off the event loop", async () => {
    await keccakReady;
    for (const compactAbove of [0, 100]) {
      const off = await buildBatchTreeOffThread(many, manyIds, createdAt, { compactAbove });
      const inline = buildBatchTree(many, manyIds, createdAt, { compactAbove });
      expect(off.dumpJson).toBe(inline.dumpJson);
      expect(many.map((_, i) => off.proof(i))).toEqual(many.map((_, i) => inline.proof(i)));
    }
  });
});
