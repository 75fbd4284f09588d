/**
 * StandardMerkleTree arithmetic, recomputed here rather than trusted from a dump: leaves are
 * keccak256(keccak256(abi.encode(leaf))), a node is keccak256 of its two children sorted, laid out as
 * OpenZeppelin's array (node i has children 2i+1 and 2i+2, leaves at the end). The hashing is
 * @facilitator/merkle's (WebAssembly keccak, hand-written leaf encoding), which the tests hold to
 * OpenZeppelin's library; a 65,536-leaf dump rebuilds in well under a second.
 */
import { buildNodes, checkSlots, doubleKeccak256, hexNodes, LeafEncoder, siblingPath, sortedSlots, toHex } from "@facilitator/merkle";
import type { Hex } from "viem";
import { leafTuple, leafTypes, type InferenceLeaf, type LeafVersion } from "./formats.ts";

export { hashPair, processProof } from "@facilitator/merkle";

const encoders = new Map<LeafVersion, LeafEncoder>();
const encoder = (version: LeafVersion) => encoders.get(version) ?? encoders.set(version, new LeafEncoder(leafTypes(version))).get(version)!;

const leafHashBytes = (leaf: InferenceLeaf): Uint8Array => doubleKeccak256(encoder(leaf.version).encode(leafTuple(leaf)));

export function leafHash(leaf: InferenceLeaf): Hex {
  return toHex(leafHashBytes(leaf));
}

export type RebuiltTree = { ok: true; tree: Hex[]; root: Hex; treeIndices: number[] } | { ok: false; error: string };

/**
 * Rebuilds the whole tree from the leaves. With `treeIndices` (a standard dump's claimed slots) every
 * leaf slot must hold exactly one leaf, so a dump cannot hide extra leaves or leave a slot to an
 * unexplained hash; without them (a compact dump) the leaves are placed as the library places them,
 * sorted by hash. `leafHashes`: the leaves' hashes when already known (a compact dump's, ParsedDump).
 */
export function rebuildTree(leaves: readonly InferenceLeaf[], treeIndices?: readonly number[], leafHashes?: Uint8Array): RebuiltTree {
  const n = leaves.length;
  if (n === 0) return { ok: false, error: "the dump has no leaves" };
  const wrong = treeIndices && checkSlots(treeIndices, n);
  if (wrong) return { ok: false, error: wrong };
  if (leafHashes && leafHashes.length !== 32 * n) return { ok: false, error: "one leaf hash per leaf is needed" };
  const hashes = leafHashes ?? hashAll(leaves);
  if (typeof hashes === "string") return { ok: false, error: hashes };
  const slots = treeIndices ?? Array.from(sortedSlots(hashes));
  const tree = hexNodes(buildNodes(hashes, slots));
  return { ok: true, tree, root: tree[0]!, treeIndices: [...slots] };
}

/** Every leaf's hash, 32 bytes each, or what stops a leaf from being encoded. */
function hashAll(leaves: readonly InferenceLeaf[]): Buffer | string {
  const hashes = Buffer.allocUnsafe(32 * leaves.length);
  for (let i = 0; i < leaves.length; i++) {
    try {
      hashes.set(leafHashBytes(leaves[i]!), 32 * i);
    } catch (e) {
      return `leaf #${i} cannot be encoded: ${(e as Error).message}`;
    }
  }
  return hashes;
}

/** The sibling path from a leaf slot up to the root. */
export function proofFromTree(tree: readonly Hex[], treeIndex: number): Hex[] {
  return siblingPath(tree, treeIndex);
}

/** Index of the first node where a stored tree disagrees with a rebuilt one, or -1. */
export function firstDifference(stored: readonly string[], rebuilt: readonly Hex[]): number {
  if (stored.length !== rebuilt.length) return Math.min(stored.length, rebuilt.length);
  return rebuilt.findIndex((node, i) => stored[i]?.toLowerCase() !== node);
}
