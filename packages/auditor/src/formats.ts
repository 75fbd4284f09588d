/**
 * The formats the auditor reads: the relay's events, the Merkle leaf (encoding v1), the batch dump
 * stored on Walrus and the TEE attestation. They are the inference pipeline's formats, restated
 * here only where the pipeline exports nothing pure to import.
 */
import { parseAbi, type Address, type Hex } from "viem";

export const relayAbi = parseAbi([
  "event Settlement(bytes32 indexed inputHash, bytes32 indexed outputHash)",
  "event SettlementWithMetadata(bytes32 indexed inputHash, bytes32 indexed outputHash, string modelInfo, string inputData, string outputData)",
  "event BatchSettlement(bytes32 indexed merkleRoot, uint256 batchSize, bytes walrusBlobId)",
  "function anchoredAt(bytes32 merkleRoot) view returns (uint256)",
]);

/** Leaf encoding v1 for OpenZeppelin's StandardMerkleTree (double-hashed leaves, sorted pairs). */
export const LEAF_TYPES = ["bytes32", "bytes32", "bytes32", "uint256", "bytes"] as const;
export const LEAF_FIELDS = ["teeId", "inputHash", "outputHash", "timestamp", "teeSignature"] as const;
/** The dump's own statement of its leaf encoding: "type name" per field. */
export const LEAF_ENCODING_V1 = LEAF_TYPES.map((type, i) => `${type} ${LEAF_FIELDS[i]}`);

export const DUMP_FORMAT = "x402-inference-batch/1";

export interface InferenceLeaf {
  teeId: Hex;
  inputHash: Hex;
  outputHash: Hex;
  timestamp: bigint;
  teeSignature: Hex;
}

export const ZERO_BYTES32: Hex = `0x${"0".repeat(64)}`;

/** The leaf as the tuple StandardMerkleTree encodes. */
export function leafTuple(leaf: InferenceLeaf): [Hex, Hex, Hex, bigint, Hex] {
  return [leaf.teeId, leaf.inputHash, leaf.outputHash, leaf.timestamp, leaf.teeSignature];
}

/** EIP-712 typed data a TEE signs over an inference (no chainId: the attestation is chain-independent). */
export const teeAttestationDomain = { name: "TEE Inference", version: "1" } as const;
export const teeAttestationTypes = {
  TeeAttestation: [
    { name: "teeId", type: "bytes32" },
    { name: "inputHash", type: "bytes32" },
    { name: "outputHash", type: "bytes32" },
    { name: "timestamp", type: "uint256" },
  ],
} as const;

/** teeId (bytes32, lower-case hex) -> the address of the TEE's secp256k1 key. */
export type TeeKeys = Record<string, Address>;
