/** Reading a batch dump (the JSON stored on Walrus) without trusting any hash it carries. */
import { compactBytes, hashPackedLeaves, unpackValues } from "@facilitator/merkle";
import type { Hex } from "viem";
import {
  COMPACT_TREE_FORMAT,
  DUMP_FORMAT,
  DUMP_FORMAT_GATEWAY,
  DUMP_FORMAT_V1,
  LEAF_ENCODING_GATEWAY,
  LEAF_ENCODING_V1,
  LEAF_ENCODING_V2,
  leafTypes,
  STANDARD_TREE_FORMAT,
  type InferenceLeaf,
  type LeafVersion,
} from "./formats.ts";

export interface StandardTree {
  format: typeof STANDARD_TREE_FORMAT;
  leafEncoding: string[];
  tree: string[];
  values: { value: unknown[]; treeIndex: number }[];
}
export interface CompactTree {
  format: typeof COMPACT_TREE_FORMAT;
  leafEncoding: string[];
  length: number;
  values: string;
}

export interface BatchDump {
  format: string;
  leafEncoding: string[];
  tree: StandardTree | CompactTree;
  recordIds: string[];
  createdAt?: string;
}

export interface ParsedDump {
  dump: BatchDump;
  /** The leaf encoding (and TEE attestation) version the dump's format names. */
  version: LeafVersion;
  /** In the order of the dump's `values`. */
  leaves: InferenceLeaf[];
  /** The slot each leaf claims (a standard dump); a compact dump's leaves go where their hashes sort. */
  treeIndices?: number[];
  /** A compact dump's leaf hashes, 32 bytes each, hashed straight from its packed bytes (no hex to parse again). */
  leafHashes?: Uint8Array;
  /** The record id of each leaf (same order as `leaves`). */
  recordIds: string[];
}

export type ParseResult = { ok: true; value: ParsedDump } | { ok: false; error: string };

/** Each dump format names its leaf layout. */
const FORMATS: Record<string, LeafVersion> = { [DUMP_FORMAT]: 2, [DUMP_FORMAT_V1]: 1, [DUMP_FORMAT_GATEWAY]: "gateway" };
const ENCODINGS: Record<string, readonly string[]> = { 2: LEAF_ENCODING_V2, 1: LEAF_ENCODING_V1, gateway: LEAF_ENCODING_GATEWAY };
const layoutName = (version: LeafVersion) => (version === "gateway" ? "the gateway layout" : `v${version}`);

const bad = (error: string): ParseResult => ({ ok: false, error });

export function parseBatchDump(bytes: Uint8Array): ParseResult {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (e) {
    return bad(`the blob is not UTF-8 JSON (${(e as Error).message})`);
  }
  if (!isObject(json)) return bad("the blob is not a JSON object");
  const version = FORMATS[json.format as string];
  if (!version) return bad(`unknown dump format ${JSON.stringify(json.format)}, expected one of ${Object.keys(FORMATS).map((f) => `"${f}"`).join(", ")}`);
  const encoding = ENCODINGS[version];
  const types = leafTypes(version);
  if (!Array.isArray(json.leafEncoding) || json.leafEncoding.join(",") !== encoding.join(",")) {
    return bad(`the dump declares leaf encoding ${JSON.stringify(json.leafEncoding)}, not ${layoutName(version)} (${encoding.join(", ")})`);
  }
  const tree = json.tree;
  if (!isObject(tree) || (tree.format !== STANDARD_TREE_FORMAT && tree.format !== COMPACT_TREE_FORMAT)) {
    return bad(`the dump has no StandardMerkleTree dump ("${STANDARD_TREE_FORMAT}") or compact tree ("${COMPACT_TREE_FORMAT}") under "tree"`);
  }
  if (!Array.isArray(tree.leafEncoding) || tree.leafEncoding.join(",") !== types.join(",")) {
    return bad(`leaf encoding ${JSON.stringify(tree.leafEncoding)} is not ${layoutName(version)} (${types.join(", ")})`);
  }
  const values = tree.format === COMPACT_TREE_FORMAT ? compactValues(tree, types) : standardValues(tree);
  if (typeof values === "string") return bad(values);
  const recordIds = json.recordIds;
  if (!Array.isArray(recordIds) || recordIds.length !== values.values.length || !recordIds.every((id) => typeof id === "string")) {
    return bad("recordIds must list one record id per leaf");
  }
  const leaves: InferenceLeaf[] = [];
  for (const [i, value] of values.values.entries()) {
    const leaf = toLeaf(value, version);
    if (typeof leaf === "string") return bad(`leaf #${i}: ${leaf}`);
    leaves.push(leaf);
  }
  return {
    ok: true,
    value: {
      dump: json as unknown as BatchDump,
      version,
      leaves,
      ...(values.treeIndices ? { treeIndices: values.treeIndices } : {}),
      ...(values.packed ? { leafHashes: hashPackedLeaves(types, values.packed, leaves.length) } : {}),
      recordIds: recordIds as string[],
    },
  };
}

/** A standard tree's values and the slots they claim, or what is wrong with them. */
function standardValues(tree: Record<string, unknown>): { values: unknown[][]; treeIndices: number[]; packed?: undefined } | string {
  if (!Array.isArray(tree.tree) || !tree.tree.every((h) => typeof h === "string")) return "tree.tree is not a list of hashes";
  if (!Array.isArray(tree.values) || tree.values.length === 0) return "the dump has no leaves";
  const values: unknown[][] = [];
  const treeIndices: number[] = [];
  for (const [i, entry] of tree.values.entries()) {
    if (!isObject(entry) || !Array.isArray(entry.value) || typeof entry.treeIndex !== "number") return `leaf #${i} is not {value, treeIndex}`;
    values.push(entry.value);
    treeIndices.push(entry.treeIndex);
  }
  return { values, treeIndices };
}

/** A compact tree's values, unpacked; the tree itself is rebuilt by the caller. */
function compactValues(tree: Record<string, unknown>, types: readonly string[]): { values: unknown[][]; treeIndices?: undefined; packed: Uint8Array } | string {
  if (!Number.isSafeInteger(tree.length) || (tree.length as number) < 1) return "the dump has no leaves";
  const packed = compactBytes(tree.values);
  if (!packed) return "tree.values is not base64";
  const unpacked = unpackValues(types, packed, tree.length as number);
  return unpacked.ok ? { values: unpacked.values, packed } : `tree.values does not unpack: ${unpacked.error}`;
}

// Hex checked by a table walk: a regular expression (or viem's isHex) costs 200-400 ns a field, which a
// dump of 65,536 leaves notices.
const HEX_DIGIT = new Uint8Array(128);
for (const c of "0123456789abcdefABCDEF") HEX_DIGIT[c.charCodeAt(0)] = 1;
const isHexBytes = (v: unknown, length?: number): v is string => {
  if (typeof v !== "string" || v.length % 2 !== 0 || (length !== undefined && v.length !== 2 + 2 * length) || !v.startsWith("0x")) return false;
  for (let i = 2; i < v.length; i++) if (HEX_DIGIT[v.charCodeAt(i)] !== 1) return false;
  return true;
};
const isHash = (v: unknown): v is string => isHexBytes(v, 32);
const MAX_UINT256 = 2n ** 256n - 1n;

/** The leaf fields from a dump value of the given encoding version, or what is wrong with them. */
export function toLeaf(value: unknown[], version: LeafVersion = 2): InferenceLeaf | string {
  const fields = version === 2 ? 7 : 5;
  if (value.length !== fields) return `expected ${fields} fields, found ${value.length}`;
  const teeId = value[0];
  const inputHash = value[1];
  const outputHash = value[2];
  // The gateway's layout puts the signature before the timestamp.
  const timestamp = version === "gateway" ? value[4] : value[3];
  const teeSignature = version === "gateway" ? value[3] : value[fields - 1];
  if (!isHash(teeId)) return "teeId is not 32-byte hex";
  if (!isHash(inputHash)) return "inputHash is not 32-byte hex";
  if (!isHash(outputHash)) return "outputHash is not 32-byte hex";
  if (!isHexBytes(teeSignature)) return "teeSignature is not hex bytes";
  let ts: bigint;
  try {
    if ((typeof timestamp !== "string" && typeof timestamp !== "number") || timestamp === "") throw new Error();
    ts = BigInt(timestamp);
  } catch {
    return "timestamp is not an integer";
  }
  if (ts < 0n || ts > MAX_UINT256) return "timestamp is out of uint256 range";
  const lower = (h: unknown) => (h as string).toLowerCase() as Hex;
  const leaf: InferenceLeaf = { version, teeId: lower(teeId), inputHash: lower(inputHash), outputHash: lower(outputHash), timestamp: ts, teeSignature: lower(teeSignature) };
  if (version === 2) {
    // The facilitator batches settle-batch records (metadata hash zero); whatever the leaf says is what
    // its TEE signature is checked against.
    const settlementType = value[4];
    const metadataHash = value[5];
    if (typeof settlementType !== "string") return "settlementType is not a string";
    if (!isHash(metadataHash)) return "metadataHash is not 32-byte hex";
    leaf.settlementType = settlementType;
    leaf.metadataHash = lower(metadataHash);
  }
  return leaf;
}

/** Index (into `leaves`) of the leaf recording this inference, or -1. */
export function findLeaf(parsed: Pick<ParsedDump, "leaves">, inputHash: Hex, outputHash: Hex): number {
  const input = inputHash.toLowerCase();
  const output = outputHash.toLowerCase();
  return parsed.leaves.findIndex((l) => l.inputHash === input && l.outputHash === output);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
