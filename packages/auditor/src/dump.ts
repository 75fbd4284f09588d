/** Reading a batch dump (the JSON stored on Walrus) without trusting any hash it carries. */
import { isHex, type Hex } from "viem";
import {
  DUMP_FORMAT,
  DUMP_FORMAT_V1,
  LEAF_ENCODING_V1,
  LEAF_ENCODING_V2,
  leafTypes,
  type InferenceLeaf,
  type LeafVersion,
} from "./formats.ts";

export interface BatchDump {
  format: string;
  leafEncoding: string[];
  tree: { format: string; leafEncoding: string[]; tree: string[]; values: { value: unknown[]; treeIndex: number }[] };
  recordIds: string[];
  createdAt?: string;
}

export interface ParsedDump {
  dump: BatchDump;
  /** The leaf encoding (and TEE attestation) version the dump's format names. */
  version: LeafVersion;
  /** In the order of the dump's `values`. */
  leaves: InferenceLeaf[];
  treeIndices: number[];
  /** The record id of each leaf (same order as `leaves`). */
  recordIds: string[];
}

export type ParseResult = { ok: true; value: ParsedDump } | { ok: false; error: string };

const bad = (error: string): ParseResult => ({ ok: false, error });

export function parseBatchDump(bytes: Uint8Array): ParseResult {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (e) {
    return bad(`the blob is not UTF-8 JSON (${(e as Error).message})`);
  }
  if (!isObject(json)) return bad("the blob is not a JSON object");
  const version: LeafVersion | undefined = json.format === DUMP_FORMAT ? 2 : json.format === DUMP_FORMAT_V1 ? 1 : undefined;
  if (!version) return bad(`unknown dump format ${JSON.stringify(json.format)}, expected "${DUMP_FORMAT}" (or "${DUMP_FORMAT_V1}")`);
  const encoding = version === 2 ? LEAF_ENCODING_V2 : LEAF_ENCODING_V1;
  const types = leafTypes(version);
  if (!Array.isArray(json.leafEncoding) || json.leafEncoding.join(",") !== encoding.join(",")) {
    return bad(`the dump declares leaf encoding ${JSON.stringify(json.leafEncoding)}, not v${version} (${encoding.join(", ")})`);
  }
  const tree = json.tree;
  if (!isObject(tree) || tree.format !== "standard-v1") return bad('the dump has no StandardMerkleTree dump ("standard-v1") under "tree"');
  if (!Array.isArray(tree.leafEncoding) || tree.leafEncoding.join(",") !== types.join(",")) {
    return bad(`leaf encoding ${JSON.stringify(tree.leafEncoding)} is not v${version} (${types.join(", ")})`);
  }
  if (!Array.isArray(tree.tree) || !tree.tree.every((h) => typeof h === "string")) return bad("tree.tree is not a list of hashes");
  if (!Array.isArray(tree.values) || tree.values.length === 0) return bad("the dump has no leaves");
  const recordIds = json.recordIds;
  if (!Array.isArray(recordIds) || recordIds.length !== tree.values.length || !recordIds.every((id) => typeof id === "string")) {
    return bad("recordIds must list one record id per leaf");
  }
  const leaves: InferenceLeaf[] = [];
  const treeIndices: number[] = [];
  for (const [i, entry] of tree.values.entries()) {
    if (!isObject(entry) || !Array.isArray(entry.value) || typeof entry.treeIndex !== "number") return bad(`leaf #${i} is not {value, treeIndex}`);
    const leaf = toLeaf(entry.value, version);
    if (typeof leaf === "string") return bad(`leaf #${i}: ${leaf}`);
    leaves.push(leaf);
    treeIndices.push(entry.treeIndex);
  }
  return {
    ok: true,
    value: {
      dump: json as unknown as BatchDump,
      version,
      leaves,
      treeIndices,
      recordIds: recordIds as string[],
    },
  };
}

/** The leaf fields from a dump value of the given encoding version, or what is wrong with them. */
export function toLeaf(value: unknown[], version: LeafVersion = 2): InferenceLeaf | string {
  const fields = version === 2 ? 7 : 5;
  if (value.length !== fields) return `expected ${fields} fields, found ${value.length}`;
  const [teeId, inputHash, outputHash, timestamp] = value;
  const teeSignature = value[fields - 1];
  for (const [name, v] of [["teeId", teeId], ["inputHash", inputHash], ["outputHash", outputHash]] as const) {
    if (!isHex(v, { strict: true }) || v.length !== 66) return `${name} is not 32-byte hex`;
  }
  if (!isHex(teeSignature, { strict: true }) || teeSignature.length % 2 !== 0) return "teeSignature is not hex bytes";
  let ts: bigint;
  try {
    if ((typeof timestamp !== "string" && typeof timestamp !== "number") || timestamp === "") throw new Error();
    ts = BigInt(timestamp);
  } catch {
    return "timestamp is not an integer";
  }
  if (ts < 0n || ts >= 2n ** 256n) return "timestamp is out of uint256 range";
  const lower = (h: unknown) => (h as string).toLowerCase() as Hex;
  const leaf: InferenceLeaf = { version, teeId: lower(teeId), inputHash: lower(inputHash), outputHash: lower(outputHash), timestamp: ts, teeSignature: lower(teeSignature) };
  if (version === 2) {
    // The facilitator batches settle-batch records (metadata hash zero); whatever the leaf says is what
    // its TEE signature is checked against.
    const [, , , , settlementType, metadataHash] = value;
    if (typeof settlementType !== "string") return "settlementType is not a string";
    if (!isHex(metadataHash, { strict: true }) || metadataHash.length !== 66) return "metadataHash is not 32-byte hex";
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
