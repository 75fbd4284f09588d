/**
 * OpenZeppelin's StandardMerkleTree over raw bytes: the same leaf hash (keccak256(keccak256(abi.encode
 * (value)))), node hash (keccak256 of the two children, smaller first), leaf order (sorted by hash, the
 * library's default `sortLeaves: true`) and array layout (root at 0, children of i at 2i+1 and 2i+2,
 * leaves at the end), so roots, node arrays, dumps and proofs are the library's to the byte.
 * Nodes live in one Buffer of 32-byte slots; hex strings are made once, at the edge.
 */
import { LeafEncoder } from "./abi.ts";
import { doubleKeccak256, keccak256 } from "./keccak.ts";

export type Hex = `0x${string}`;

export interface BuiltTree {
  /** 2n-1 nodes of 32 bytes in OpenZeppelin's array layout. */
  nodes: Buffer;
  /** Slot in `nodes` of each value, in the order the values were given. */
  treeIndices: Uint32Array;
}

/** StandardMerkleTree.dump() ("standard-v1"). */
export interface StandardTreeDump<V = unknown[]> {
  format: "standard-v1";
  leafEncoding: string[];
  tree: Hex[];
  values: { value: V; treeIndex: number }[];
}

const asBuffer = (b: Uint8Array): Buffer => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/** The leaf hash of every value, 32 bytes each, in the values' order. */
export function hashLeaves(types: readonly string[], values: readonly (readonly unknown[])[]): Buffer {
  const encoder = new LeafEncoder(types);
  const hashes = Buffer.allocUnsafe(32 * values.length);
  values.forEach((value, i) => {
    try {
      hashes.set(doubleKeccak256(encoder.encode(value)), 32 * i);
    } catch (e) {
      throw new Error(`leaf #${i}: ${(e as Error).message}`);
    }
  });
  return hashes;
}

/**
 * The slot of each leaf as the library places them: the k-th smallest hash (equal hashes in input order,
 * as its stable sort leaves them) at 2n-2-k. Sorted natively as doubles holding the hash's top bits and
 * the leaf's index; leaves whose top bits tie are then ordered by their whole hash.
 */
export function sortedSlots(leafHashes: Uint8Array): Uint32Array {
  const hashes = asBuffer(leafHashes);
  const n = hashes.length / 32;
  if (!Number.isInteger(n) || n === 0) throw new Error("expected one or more 32-byte leaf hashes");
  const indexBits = Math.max(1, Math.ceil(Math.log2(n)));
  const scale = 2 ** indexBits;
  // 48 bits read, at most 53 - indexBits kept, so prefix * scale + index stays an exact double.
  const drop = 2 ** Math.max(0, indexBits - 5);
  const keys = new Float64Array(n);
  for (let i = 0; i < n; i++) keys[i] = Math.floor(hashes.readUIntBE(32 * i, 6) / drop) * scale + i;
  keys.sort();
  const order = new Uint32Array(n);
  for (let k = 0; k < n; k++) order[k] = keys[k]! % scale;
  const byHash = (a: number, b: number) => hashes.compare(hashes, 32 * b, 32 * b + 32, 32 * a, 32 * a + 32) || a - b;
  for (let start = 0; start < n; ) {
    const prefix = Math.floor(keys[start]! / scale);
    let end = start + 1;
    while (end < n && Math.floor(keys[end]! / scale) === prefix) end++;
    if (end - start > 1) order.set(Array.from(order.subarray(start, end)).sort(byHash), start);
    start = end;
  }
  const slots = new Uint32Array(n);
  for (let k = 0; k < n; k++) slots[order[k]!] = 2 * n - 2 - k;
  return slots;
}

/** What is wrong with a claimed placement of n leaves (each in a leaf slot, one per slot), or undefined. */
export function checkSlots(treeIndices: ArrayLike<number>, n: number): string | undefined {
  if (n === 0) return "no leaves";
  if (treeIndices.length !== n) return "every leaf needs a tree index";
  const taken = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const slot = treeIndices[i]!;
    if (!Number.isInteger(slot) || slot < n - 1 || slot > 2 * n - 2) return `leaf #${i} claims tree index ${slot}, outside the leaf slots ${n - 1}..${2 * n - 2}`;
    if (taken[slot - (n - 1)]++) return `two leaves claim tree index ${slot}`;
  }
  return undefined;
}

/** Places the leaf hashes in their slots and hashes every internal node, from the last up to the root. */
export function buildNodes(leafHashes: Uint8Array, treeIndices: ArrayLike<number>): Buffer {
  const hashes = asBuffer(leafHashes);
  const n = hashes.length / 32;
  const wrong = checkSlots(treeIndices, n);
  if (wrong) throw new Error(wrong);
  const nodes = Buffer.allocUnsafe(32 * (2 * n - 1));
  for (let i = 0; i < n; i++) hashes.copy(nodes, 32 * treeIndices[i]!, 32 * i, 32 * i + 32);
  const pair = Buffer.allocUnsafe(64);
  for (let j = n - 2; j >= 0; j--) {
    const left = 64 * j + 32; // children 2j+1 and 2j+2 sit side by side
    if (nodes.compare(nodes, left + 32, left + 64, left, left + 32) <= 0) {
      nodes.set(keccak256(nodes.subarray(left, left + 64)), 32 * j);
    } else {
      nodes.copy(pair, 0, left + 32, left + 64);
      nodes.copy(pair, 32, left, left + 32);
      nodes.set(keccak256(pair), 32 * j);
    }
  }
  return nodes;
}

/** The tree over these leaf hashes, placed as the library places them. */
export function treeOfLeafHashes(leafHashes: Uint8Array): BuiltTree {
  const treeIndices = sortedSlots(leafHashes);
  return { nodes: buildNodes(leafHashes, treeIndices), treeIndices };
}

/** StandardMerkleTree.of(values, types) without the library's per-leaf cost. */
export function buildTree(types: readonly string[], values: readonly (readonly unknown[])[]): BuiltTree {
  if (values.length === 0) throw new Error("a tree needs at least one leaf");
  return treeOfLeafHashes(hashLeaves(types, values));
}

export const toHex = (bytes: Uint8Array): Hex => `0x${asBuffer(bytes).toString("hex")}`;

/** Every node as a lower-case hex string, the library's `tree` array. */
export function hexNodes(nodes: Uint8Array): Hex[] {
  // One conversion of the whole buffer, then 64-digit slices: far cheaper than a conversion per node.
  const all = asBuffer(nodes).toString("hex");
  const out = new Array<Hex>(all.length / 64);
  for (let i = 0; i < out.length; i++) out[i] = `0x${all.slice(64 * i, 64 * i + 64)}`;
  return out;
}

/** The library's dump of a tree built here: `values[i].value` is the caller's own value object. */
export function standardDump<V>(types: readonly string[], values: readonly V[], tree: Hex[], treeIndices: ArrayLike<number>): StandardTreeDump<V> {
  return { format: "standard-v1", leafEncoding: [...types], tree, values: values.map((value, i) => ({ value, treeIndex: treeIndices[i]! })) };
}

/** The slots of the nodes that prove the node at `treeIndex` (getProof's sibling path), leaf side first. */
export function siblingSlots(treeIndex: number): number[] {
  const slots: number[] = [];
  for (let j = treeIndex; j > 0; j = (j - 1) >> 1) slots.push(j % 2 === 1 ? j + 1 : j - 1);
  return slots;
}

/** The proof of the node at `treeIndex` (getProof's sibling path), read off the node array. */
export function siblingPath<T>(nodes: readonly T[], treeIndex: number): T[] {
  return siblingSlots(treeIndex).map((slot) => nodes[slot]!);
}

/** siblingPath read off nodes in 32-byte slots, without a hex string per node of the tree. */
export function nodeProof(nodes: Uint8Array, treeIndex: number): Hex[] {
  const buf = asBuffer(nodes);
  return siblingSlots(treeIndex).map((slot) => `0x${buf.toString("hex", 32 * slot, 32 * slot + 32)}` as Hex);
}

const HASH = /^0x[0-9a-fA-F]{64}$/;
const hashBytes = (h: string): Buffer => {
  if (!HASH.test(h)) throw new Error(`${JSON.stringify(h)} is not a 32-byte hex hash`);
  return Buffer.from(h.slice(2), "hex");
};

/** keccak256 of two nodes, the smaller first. */
export function hashPair(a: Hex, b: Hex): Hex {
  const [x, y] = [hashBytes(a), hashBytes(b)];
  return toHex(keccak256(Buffer.concat(x.compare(y) <= 0 ? [x, y] : [y, x])));
}

/** The root a proof leads to from a leaf hash (MerkleProof.processProof), lower case. */
export function processProof(leafHash: Hex, proof: readonly Hex[]): Hex {
  const pair = Buffer.allocUnsafe(64);
  let node = hashBytes(leafHash);
  for (const p of proof) {
    const sibling = hashBytes(p);
    const low = node.compare(sibling) <= 0;
    (low ? node : sibling).copy(pair, 0);
    (low ? sibling : node).copy(pair, 32);
    node = asBuffer(keccak256(pair));
  }
  return toHex(node);
}

/** The standard leaf hash of one value. */
export const leafHash = (types: readonly string[], value: readonly unknown[]): Hex => toHex(hashLeaves(types, [value]));

/** StandardMerkleTree.verify: the value, with its proof, leads to `root`. Malformed input is false. */
export function verifyProof(root: string, types: readonly string[], value: readonly unknown[], proof: readonly Hex[]): boolean {
  try {
    return processProof(leafHash(types, value), proof) === root.toLowerCase();
  } catch {
    return false;
  }
}
