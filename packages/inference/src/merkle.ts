/**
 * Merkle batches of leaf encoding v2: the leaf, the tree (OpenZeppelin's StandardMerkleTree rules,
 * built over raw bytes by @facilitator/merkle: root, nodes and proofs identical to the library's) and
 * the versioned dump stored on Walrus (batch-dump.ts: "standard-v1", or "compact-v1" above
 * `compactAbove` records). See README.md, LEAF-ENCODING.
 */
import { siblingPath, verifyProof, type StandardTreeDump } from "@facilitator/merkle";
import type { Hex } from "viem";
import {
  COMPACT_DUMP_ABOVE,
  COMPACT_TREE_FORMAT,
  dumpedTree,
  dumpedTreeOffThread,
  loadDump,
  STANDARD_TREE_FORMAT,
  type DumpEnvelope,
  type DumpedTree,
  type DumpLayout,
  type DumpOptions,
  type LoadedDump,
  type StoredDump,
} from "./batch-dump.ts";
import type { InferenceRecord } from "./records.ts";
import { recordMetadataHash } from "./tee.ts";

export { COMPACT_DUMP_ABOVE, COMPACT_TREE_FORMAT, siblingPath, STANDARD_TREE_FORMAT };

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
export const LEAF_LAYOUT_V2: DumpLayout = { format: BATCH_DUMP_FORMAT, leafEncoding: LEAF_ENCODING_V2 };
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

/** A dump in the standard form: `tree` is `StandardMerkleTree.dump()`. */
export type BatchDump = DumpEnvelope<StandardTreeDump<LeafValue>>;
/** A dump as stored: the standard form, or the compact one whose `tree` holds the packed values only. */
export type StoredBatchDump = StoredDump<LeafValue>;
export type BatchTree = DumpedTree<LeafValue>;
export type BatchTreeOptions = DumpOptions;

/** Builds the tree of a batch. Deterministic: the same records in the same order give the same bytes. */
export function buildBatchTree(records: readonly InferenceRecord[], recordIds: readonly string[], createdAt: string, opts: BatchTreeOptions = {}): BatchTree {
  return dumpedTree(LEAF_LAYOUT_V2, records.map(leafValue), recordIds, createdAt, opts);
}

/** buildBatchTree with the hashing in a worker thread: the same bytes, the event loop free meanwhile. */
export function buildBatchTreeOffThread(records: readonly InferenceRecord[], recordIds: readonly string[], createdAt: string, opts: BatchTreeOptions = {}): Promise<BatchTree> {
  return dumpedTreeOffThread(LEAF_LAYOUT_V2, records.map(leafValue), recordIds, createdAt, opts);
}

/**
 * Parses and checks a dump fetched from Walrus, recomputing every node from the values. Either form
 * comes back as the standard one, with `stored` naming the form it was stored in.
 */
export function loadBatchDump(json: string | Uint8Array): LoadedDump<LeafValue> {
  return loadDump<LeafValue>(LEAF_LAYOUT_V2, json);
}

export function verifyLeafProof(root: Hex, record: InferenceRecord, proof: readonly Hex[]): boolean {
  return verifyProof(root, LEAF_TYPES_V2, leafValue(record), proof);
}
