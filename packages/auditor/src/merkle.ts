/**
 * StandardMerkleTree arithmetic, recomputed here with viem rather than trusted from a dump: leaves
 * are keccak256(keccak256(abi.encode(leaf))), a node is keccak256 of its two children sorted.
 * The tree is laid out as OpenZeppelin's array: node i has children 2i+1 and 2i+2, leaves at the end.
 */
import { concat, encodeAbiParameters, keccak256, type Hex } from "viem";
import { leafTuple, leafTypes, type InferenceLeaf } from "./formats.ts";

export function leafHash(leaf: InferenceLeaf): Hex {
  const params = leafTypes(leaf.version).map((type) => ({ type }));
  return keccak256(keccak256(encodeAbiParameters(params, leafTuple(leaf))));
}

export function hashPair(a: Hex, b: Hex): Hex {
  const [x, y] = [a.toLowerCase() as Hex, b.toLowerCase() as Hex].sort();
  return keccak256(concat([x!, y!]));
}

/** The root a proof leads to from a leaf hash (OpenZeppelin MerkleProof.processProof). */
export function processProof(leaf: Hex, proof: readonly Hex[]): Hex {
  return proof.reduce<Hex>((node, sibling) => hashPair(node, sibling), leaf.toLowerCase() as Hex);
}

export type RebuiltTree = { ok: true; tree: Hex[]; root: Hex } | { ok: false; error: string };

/**
 * Rebuilds the whole tree from the leaves and the slot each one claims. Every leaf slot must hold
 * exactly one leaf, so a dump cannot hide extra leaves or leave a slot to an unexplained hash.
 */
export function rebuildTree(leaves: readonly InferenceLeaf[], treeIndices: readonly number[]): RebuiltTree {
  const n = leaves.length;
  if (n === 0) return { ok: false, error: "the dump has no leaves" };
  if (treeIndices.length !== n) return { ok: false, error: "every leaf needs a tree index" };
  const tree: Hex[] = new Array(2 * n - 1);
  for (let i = 0; i < n; i++) {
    const slot = treeIndices[i]!;
    if (!Number.isInteger(slot) || slot < n - 1 || slot > 2 * n - 2) {
      return { ok: false, error: `leaf #${i} claims tree index ${slot}, outside the leaf slots ${n - 1}..${2 * n - 2}` };
    }
    if (tree[slot] !== undefined) return { ok: false, error: `two leaves claim tree index ${slot}` };
    tree[slot] = leafHash(leaves[i]!);
  }
  for (let i = n - 2; i >= 0; i--) tree[i] = hashPair(tree[2 * i + 1]!, tree[2 * i + 2]!);
  return { ok: true, tree, root: tree[0]! };
}

/** The sibling path from a leaf slot up to the root. */
export function proofFromTree(tree: readonly Hex[], treeIndex: number): Hex[] {
  const proof: Hex[] = [];
  for (let i = treeIndex; i > 0; i = Math.floor((i - 1) / 2)) proof.push(tree[i % 2 === 1 ? i + 1 : i - 1]!);
  return proof;
}

/** Index of the first node where a stored tree disagrees with a rebuilt one, or -1. */
export function firstDifference(stored: readonly string[], rebuilt: readonly Hex[]): number {
  if (stored.length !== rebuilt.length) return Math.min(stored.length, rebuilt.length);
  return rebuilt.findIndex((node, i) => stored[i]?.toLowerCase() !== node);
}
