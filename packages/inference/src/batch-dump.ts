/**
 * The batch dump stored on Walrus, for any leaf layout: an envelope (`format`, `leafEncoding`, `tree`,
 * `recordIds`, `createdAt`) around the tree, which is OpenZeppelin's "standard-v1" dump or, above
 * `compactAbove` leaves, the "compact-v1" one (packed values only; readers rebuild the nodes). The tree
 * is @facilitator/merkle's: StandardMerkleTree's rules, built over raw bytes. merkle.ts names leaf
 * encoding v2's layout; another layout (another leaf encoding, its own format name) uses the same code.
 */
import {
  buildNodes,
  buildTreeOffThread,
  checkSlots,
  COMPACT_TREE_FORMAT,
  compactBytes,
  compactDump,
  hashLeaves,
  hashPackedLeaves,
  hexNodes,
  leafHash,
  nodeProof,
  packInParts,
  packValues,
  standardDump,
  toHex,
  treeOfLeafHashes,
  unpackValues,
  type BuiltTree,
  type CompactTreeDump,
  type StandardTreeDump,
} from "@facilitator/merkle";
import type { Hex } from "viem";

export const STANDARD_TREE_FORMAT = "standard-v1";
export { COMPACT_TREE_FORMAT };
/**
 * Default SETTLEMENT_COMPACT_DUMP_ABOVE: larger batches get the compact dump. Up to here the standard
 * dump (which OpenZeppelin's `StandardMerkleTree.load` reads as it is) stays under about 10 MB.
 */
export const COMPACT_DUMP_ABOVE = 16_384;

/** What a dump's envelope names: its format and its leaf fields ("type name", in order). */
export interface DumpLayout {
  format: string;
  leafEncoding: readonly string[];
}
export const leafTypesOf = (layout: DumpLayout): string[] => layout.leafEncoding.map((f) => f.split(" ")[0]!);

export interface DumpEnvelope<T> {
  format: string;
  leafEncoding: string[];
  tree: T;
  /** `recordIds[i]` is the id of the record whose leaf is value i. */
  recordIds: string[];
  /** ISO time the batch was formed; fixed then, so a rebuilt dump is byte for byte the same. */
  createdAt: string;
}
/** A dump as stored: the standard form, or the compact one whose `tree` holds the packed values only. */
export type StoredDump<V> = DumpEnvelope<StandardTreeDump<V> | CompactTreeDump>;

export interface DumpedTree<V> {
  root: Hex;
  /** The dump as stored: standard, or compact above `compactAbove` leaves. */
  dump: StoredDump<V>;
  /** The dump's exact bytes as stored on Walrus. */
  dumpJson: string;
  /** The nodes in 32-byte slots (OpenZeppelin's array layout), and the slot of each value, in order. */
  nodes: Buffer;
  treeIndices: Uint32Array;
  proof(index: number): Hex[];
  /** The standard leaf hash of a value. */
  leafHash(value: V): Hex;
}

export interface DumpOptions {
  /** Batches of more leaves than this get the compact dump (default COMPACT_DUMP_ABOVE). */
  compactAbove?: number;
}

function checkBatch(values: readonly unknown[], recordIds: readonly string[]): void {
  if (values.length === 0 || values.length !== recordIds.length) throw new Error("a batch needs one id per record, and at least one record");
}

/**
 * The tree and dump of a batch of leaf values. Deterministic: the same values in the same order give
 * the same bytes. The values are packed once and hashed from the packed bytes (cheaper than from their
 * hex strings), which a compact dump then stores as they are.
 */
export function dumpedTree<V extends readonly unknown[]>(layout: DumpLayout, values: V[], recordIds: readonly string[], createdAt: string, opts: DumpOptions = {}): DumpedTree<V> {
  checkBatch(values, recordIds);
  const types = leafTypesOf(layout);
  const packed = packValues(types, values);
  return finish(layout, values, recordIds, createdAt, treeOfLeafHashes(hashPackedLeaves(types, packed, values.length)), opts, packed);
}

/** dumpedTree with the hashing in worker threads (one per core, up to two): the same bytes, the event loop free meanwhile. */
export async function dumpedTreeOffThread<V extends readonly unknown[]>(layout: DumpLayout, values: V[], recordIds: readonly string[], createdAt: string, opts: DumpOptions = {}): Promise<DumpedTree<V>> {
  checkBatch(values, recordIds);
  const types = leafTypesOf(layout);
  const parts = await packInParts(types, values);
  const built = await buildTreeOffThread(types, parts);
  return finish(layout, values, recordIds, createdAt, built, opts, parts.length === 1 ? parts[0]!.packed : Buffer.concat(parts.map((p) => p.packed)));
}

function finish<V extends readonly unknown[]>(layout: DumpLayout, values: V[], recordIds: readonly string[], createdAt: string, built: BuiltTree, opts: DumpOptions, packed: Uint8Array): DumpedTree<V> {
  const types = leafTypesOf(layout);
  const compact = values.length > (opts.compactAbove ?? COMPACT_DUMP_ABOVE);
  const tree = compact ? compactDump(types, values, packed) : standardDump(types, values, hexNodes(built.nodes), built.treeIndices);
  const dump: StoredDump<V> = { format: layout.format, leafEncoding: [...layout.leafEncoding], tree, recordIds: [...recordIds], createdAt };
  return {
    root: toHex(built.nodes.subarray(0, 32)),
    dump,
    dumpJson: JSON.stringify(dump),
    nodes: built.nodes,
    treeIndices: built.treeIndices,
    proof: (i) => nodeProof(built.nodes, built.treeIndices[i]!),
    leafHash: (value) => leafHash(types, value),
  };
}

export interface LoadedDump<V> {
  /** The standard form (a compact dump expanded: its values, their slots and every node). */
  dump: DumpEnvelope<StandardTreeDump<V>>;
  root: Hex;
  /** The form it was stored in. */
  stored: typeof STANDARD_TREE_FORMAT | typeof COMPACT_TREE_FORMAT;
}

/**
 * Parses and checks a dump of this layout, recomputing every node from the values: a standard dump's
 * stored nodes must all match, a compact dump's tree is rebuilt.
 */
export function loadDump<V extends readonly unknown[]>(layout: DumpLayout, json: string | Uint8Array): LoadedDump<V> {
  const raw = JSON.parse(typeof json === "string" ? json : new TextDecoder().decode(json)) as StoredDump<V>;
  const types = leafTypesOf(layout);
  const tree = raw.tree;
  if (raw.format !== layout.format) throw new Error(`unknown batch dump format ${JSON.stringify(raw.format)}, expected ${JSON.stringify(layout.format)}`);
  if (JSON.stringify(raw.leafEncoding) !== JSON.stringify(layout.leafEncoding)) throw new Error("unknown leaf encoding");
  if (JSON.stringify(tree?.leafEncoding) !== JSON.stringify(types)) throw new Error(`the tree's leaf encoding is not ${types.join(", ")}`);
  const count = tree.format === COMPACT_TREE_FORMAT ? tree.length : tree.values?.length;
  if (!Array.isArray(raw.recordIds) || raw.recordIds.length !== count) throw new Error("recordIds must list one id per tree value");
  if (tree.format === COMPACT_TREE_FORMAT) {
    const packed = compactBytes(tree.values);
    if (!packed || !Number.isSafeInteger(count) || count < 1) throw new Error("the compact tree's values are not base64 packed leaves");
    const unpacked = unpackValues(types, packed, count);
    if (!unpacked.ok) throw new Error(`the compact tree's values: ${unpacked.error}`);
    const values = unpacked.values as unknown[] as V[];
    const built = treeOfLeafHashes(hashLeaves(types, values));
    const nodes = hexNodes(built.nodes);
    return { dump: { ...raw, tree: standardDump(types, values, nodes, built.treeIndices) }, root: nodes[0]!, stored: COMPACT_TREE_FORMAT };
  }
  if (tree.format !== STANDARD_TREE_FORMAT) throw new Error(`unknown tree format ${JSON.stringify((tree as { format?: unknown }).format)}`);
  const slots = tree.values.map((v) => v.treeIndex);
  const wrong = checkSlots(slots, slots.length);
  if (wrong) throw new Error(wrong);
  const nodes = hexNodes(buildNodes(hashLeaves(types, tree.values.map((v) => v.value)), slots));
  const differs = nodes.findIndex((node, i) => typeof tree.tree[i] !== "string" || tree.tree[i]!.toLowerCase() !== node);
  if (differs >= 0 || tree.tree.length !== nodes.length) throw new Error(`the dump's tree disagrees with its values at node ${differs >= 0 ? differs : nodes.length}`);
  return { dump: { ...raw, tree }, root: nodes[0]!, stored: STANDARD_TREE_FORMAT };
}
