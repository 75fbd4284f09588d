/**
 * Merkle batches: leaf encoding v2, the tree (OpenZeppelin StandardMerkleTree: double-hashed leaves,
 * sorted pairs) and the versioned JSON dump stored on Walrus. See README.md, LEAF-ENCODING.
 */
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import type { Hex } from "viem";
import type { InferenceRecord } from "./records.ts";
import { recordMetadataHash } from "./tee.ts";

/**
 * Leaf encoding v2: every field of the TEE attestation (v2) and its signature are inside the leaf, so a
 * proof covers exactly what the TEE signed and the signature can be checked from the leaf alone.
 * (v1 had no settlementType and metadataHash, matching attestation v1.)
 */
export const LEAF_ENCODING_V2 = [
  "bytes32 teeId",
  "bytes32 inputHash",
  "bytes32 outputHash",
  "uint256 timestamp",
  "string settlementType",
  "bytes32 metadataHash",
  "bytes teeSignature",
] as const;
export const LEAF_TYPES_V2 = LEAF_ENCODING_V2.map((f) => f.split(" ")[0]!);

export const BATCH_DUMP_FORMAT = "x402-inference-batch/2";
export const ZERO_BYTES32: Hex = `0x${"0".repeat(64)}`;

/** [teeId, inputHash, outputHash, timestamp (decimal string), settlementType, metadataHash, teeSignature]; zero values when absent. */
export type LeafValue = [Hex, Hex, Hex, string, string, Hex, Hex];

export function leafValue(r: InferenceRecord): LeafValue {
  return [r.teeId ?? ZERO_BYTES32, r.inputHash, r.outputHash, r.teeTimestamp ?? "0", r.settlementType, recordMetadataHash(r), r.teeSignature ?? "0x"];
}

/** The leaf as the relay's `Inference` struct, for `verifyInference`, `inferenceLeaf` and `verifyTeeSignature`. */
export function leafStruct(r: InferenceRecord) {
  const [teeId, inputHash, outputHash, timestamp, settlementType, metadataHash, teeSignature] = leafValue(r);
  return { teeId, inputHash, outputHash, timestamp: BigInt(timestamp), settlementType, metadataHash, teeSignature };
}

export interface BatchDump {
  format: typeof BATCH_DUMP_FORMAT;
  leafEncoding: string[];
  /** `StandardMerkleTree.dump()`: `tree.values[i]` is the leaf of `recordIds[i]`. */
  tree: ReturnType<StandardMerkleTree<LeafValue>["dump"]>;
  recordIds: string[];
  /** ISO time the batch was formed; fixed then, so a rebuilt dump is byte for byte the same. */
  createdAt: string;
}

export interface BatchTree {
  root: Hex;
  tree: StandardMerkleTree<LeafValue>;
  dump: BatchDump;
  /** The dump's exact bytes as stored on Walrus. */
  dumpJson: string;
  proof(index: number): Hex[];
}

/** Builds the tree of a batch. Deterministic: the same records in the same order give the same bytes. */
export function buildBatchTree(records: readonly InferenceRecord[], recordIds: readonly string[], createdAt: string): BatchTree {
  if (records.length === 0 || records.length !== recordIds.length) throw new Error("a batch needs one id per record, and at least one record");
  const tree = StandardMerkleTree.of(records.map(leafValue), LEAF_TYPES_V2);
  const dump: BatchDump = {
    format: BATCH_DUMP_FORMAT,
    leafEncoding: [...LEAF_ENCODING_V2],
    tree: tree.dump(),
    recordIds: [...recordIds],
    createdAt,
  };
  return { root: tree.root as Hex, tree, dump, dumpJson: JSON.stringify(dump), proof: (i) => siblingPath(dump.tree.tree as Hex[], dump.tree.values[i]!.treeIndex) };
}

/**
 * The proof of the node at `treeIndex`, read off the stored node array (OpenZeppelin's layout: the
 * root at 0, children of j at 2j+1 and 2j+2). `getProof` would re-hash the leaf for every record of a
 * batch; the nodes are already there, so a batch of a thousand takes milliseconds instead of seconds.
 */
export function siblingPath(nodes: readonly Hex[], treeIndex: number): Hex[] {
  const proof: Hex[] = [];
  for (let j = treeIndex; j > 0; j = (j - 1) >> 1) proof.push(nodes[j % 2 === 1 ? j + 1 : j - 1]!);
  return proof;
}

/** Parses and checks a dump fetched from Walrus; returns the loaded tree (whose root it recomputes). */
export function loadBatchDump(json: string | Uint8Array): { dump: BatchDump; tree: StandardMerkleTree<LeafValue>; root: Hex } {
  const dump = JSON.parse(typeof json === "string" ? json : new TextDecoder().decode(json)) as BatchDump;
  if (dump.format !== BATCH_DUMP_FORMAT) throw new Error(`unknown batch dump format ${JSON.stringify(dump.format)}`);
  if (JSON.stringify(dump.leafEncoding) !== JSON.stringify(LEAF_ENCODING_V2)) throw new Error("unknown leaf encoding");
  if (!Array.isArray(dump.recordIds) || dump.recordIds.length !== dump.tree.values.length) {
    throw new Error("recordIds must list one id per tree value");
  }
  // load() trusts the stored hashes; validate() recomputes every node from the values.
  const tree = StandardMerkleTree.load(dump.tree);
  tree.validate();
  return { dump, tree, root: tree.root as Hex };
}

export function verifyLeafProof(root: Hex, record: InferenceRecord, proof: readonly Hex[]): boolean {
  return StandardMerkleTree.verify(root, LEAF_TYPES_V2, leafValue(record), [...proof]);
}
