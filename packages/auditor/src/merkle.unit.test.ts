import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { describe, expect, it } from "vitest";
import { keccak256, toHex, type Hex } from "viem";
import { LEAF_TYPES_V1, LEAF_TYPES_V2, ZERO_BYTES32, type InferenceLeaf } from "./formats.ts";
import { firstDifference, hashPair, leafHash, processProof, proofFromTree, rebuildTree } from "./merkle.ts";

const h = (s: string) => keccak256(toHex(s));
const leaf = (i: number, extra: Partial<InferenceLeaf> = {}): InferenceLeaf => ({
  version: 2,
  teeId: ZERO_BYTES32,
  inputHash: h(`in${i}`),
  outputHash: h(`out${i}`),
  timestamp: BigInt(1_700_000_000 + i),
  settlementType: "settle-batch",
  metadataHash: ZERO_BYTES32,
  teeSignature: "0x",
  ...extra,
});
const asValue = (l: InferenceLeaf) =>
  l.version === 2
    ? [l.teeId, l.inputHash, l.outputHash, l.timestamp.toString(), l.settlementType!, l.metadataHash!, l.teeSignature]
    : [l.teeId, l.inputHash, l.outputHash, l.timestamp.toString(), l.teeSignature];
const ozTree = (leaves: InferenceLeaf[], sortLeaves = true) =>
  StandardMerkleTree.of(leaves.map(asValue), [...(leaves[0]?.version === 1 ? LEAF_TYPES_V1 : LEAF_TYPES_V2)], { sortLeaves });
const indices = (t: ReturnType<typeof ozTree>) => t.dump().values.map((v) => v.treeIndex);

describe("leaf and pair hashing agree with OpenZeppelin's StandardMerkleTree", () => {
  it.each([
    ["no TEE fields", leaf(1)],
    ["a 65-byte signature and a large timestamp", leaf(2, { teeId: h("tee"), teeSignature: `0x${"ab".repeat(65)}`, timestamp: 2n ** 255n })],
    ["a settle-metadata leaf with its metadata hash", leaf(3, { settlementType: "settle-metadata", metadataHash: h("meta") })],
  ])("%s", (_name, l) => {
    const tree = ozTree([l, leaf(9)]);
    expect(tree.dump().tree).toContain(leafHash(l));
  });

  it("hashes v1 leaves (older dumps) with the v1 encoding", () => {
    const v1 = (i: number): InferenceLeaf => ({ version: 1, teeId: h("tee"), inputHash: h(`in${i}`), outputHash: h(`out${i}`), timestamp: 5n, teeSignature: `0x${"cd".repeat(65)}` });
    const tree = ozTree([v1(1), v1(2)]);
    expect(tree.dump().tree).toContain(leafHash(v1(1)));
    expect(leafHash(v1(1))).not.toBe(leafHash({ ...v1(1), version: 2, settlementType: "settle-batch", metadataHash: ZERO_BYTES32 }));
  });

  it("sorts a pair before hashing, so order does not matter", () => {
    expect(hashPair(h("a"), h("b"))).toBe(hashPair(h("b"), h("a")));
    const [low, high] = [h("a"), h("b")].sort();
    expect(hashPair(h("a"), h("b"))).toBe(keccak256(`0x${low!.slice(2)}${high!.slice(2)}`));
  });
});

describe("rebuildTree recomputes OpenZeppelin's root from the leaves and their slots", () => {
  it.each([1, 2, 3, 5, 8, 13])("%i leaves, sorted and unsorted", (n) => {
    const leaves = Array.from({ length: n }, (_, i) => leaf(i));
    for (const sort of [true, false]) {
      const oz = ozTree(leaves, sort);
      const rebuilt = rebuildTree(leaves, indices(oz));
      expect(rebuilt.ok && rebuilt.root).toBe(oz.root);
      expect(rebuilt.ok && firstDifference(oz.dump().tree, rebuilt.tree)).toBe(-1);
      for (let i = 0; i < n; i++) {
        const proof = proofFromTree((rebuilt as { tree: Hex[] }).tree, indices(oz)[i]!);
        expect(proof).toEqual(oz.getProof(i));
        expect(processProof(leafHash(leaves[i]!), proof)).toBe(oz.root);
      }
    }
  });

  it.each([
    ["no leaves", [], [], /no leaves/],
    ["a missing index", [leaf(0), leaf(1)], [1], /every leaf needs a tree index/],
    ["an index outside the leaf slots", [leaf(0), leaf(1)], [0, 1], /outside the leaf slots/],
    ["two leaves in one slot", [leaf(0), leaf(1)], [1, 1], /two leaves claim tree index 1/],
  ] as [string, InferenceLeaf[], number[], RegExp][])("refuses %s", (_name, leaves, idx, error) => {
    const rebuilt = rebuildTree(leaves, idx);
    expect(rebuilt.ok).toBe(false);
    expect(!rebuilt.ok && rebuilt.error).toMatch(error);
  });

  it.each([1, 2, 5, 64, 100])("%i leaves without slots (a compact dump): placed as the library places them", (n) => {
    const leaves = Array.from({ length: n }, (_, i) => leaf(i, i % 2 ? { teeId: h("tee"), teeSignature: `0x${"ab".repeat(65)}` } : {}));
    const oz = ozTree(leaves);
    const rebuilt = rebuildTree(leaves);
    expect(rebuilt).toEqual({ ok: true, tree: oz.dump().tree, root: oz.root, treeIndices: indices(oz) });
    // Leaf hashes handed in (a compact dump's) give the same tree.
    const hashes = Buffer.concat(leaves.map((l) => Buffer.from(leafHash(l).slice(2), "hex")));
    expect(rebuildTree(leaves, undefined, hashes)).toEqual(rebuilt);
    expect(rebuildTree(leaves, undefined, hashes.subarray(32))).toEqual({ ok: false, error: "one leaf hash per leaf is needed" });
  });

  it("refuses a leaf that cannot be encoded", () => {
    expect(rebuildTree([leaf(0), leaf(1, { teeSignature: "0xabc" })])).toEqual({ ok: false, error: expect.stringMatching(/leaf #1 cannot be encoded/) });
  });

  it("finds where a stored tree stops matching its leaves", () => {
    const leaves = [leaf(0), leaf(1), leaf(2)];
    const oz = ozTree(leaves);
    const changed = [...leaves];
    changed[1] = leaf(7);
    const rebuilt = rebuildTree(changed, indices(oz));
    expect(rebuilt.ok && firstDifference(oz.dump().tree, rebuilt.tree)).toBe(0);
    expect(firstDifference(oz.dump().tree.slice(1), (rebuilt as { tree: Hex[] }).tree)).toBe(4);
  });
});

describe("processProof", () => {
  const leaves = [leaf(0), leaf(1), leaf(2), leaf(3)];
  const oz = ozTree(leaves);
  const other = ozTree([leaf(0), leaf(5), leaf(6), leaf(7)]);
  it.each([
    ["the leaf's own proof", leaves[0]!, oz.getProof(0), true],
    ["a proof from another tree", leaves[0]!, other.getProof(0), false],
    ["another leaf with the first leaf's proof", leaves[1]!, oz.getProof(0), false],
    ["a truncated proof", leaves[0]!, oz.getProof(0).slice(1), false],
  ] as const)("%s -> %s", (_name, l, proof, holds) => {
    expect(processProof(leafHash(l), proof as Hex[]) === oz.root).toBe(holds);
  });
});
