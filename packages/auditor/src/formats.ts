/**
 * The formats the auditor reads: the relay's events, the Merkle leaf (encodings v2 and v1), the batch dump
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

/**
 * Leaf encodings for OpenZeppelin's StandardMerkleTree (double-hashed leaves, sorted pairs).
 * v2 (dump format `x402-inference-batch/2`) holds every field of TEE attestation v2; v1 (format `/1`,
 * written before attestations covered the settlement type and metadata) is still read.
 */
export const LEAF_TYPES_V2 = ["bytes32", "bytes32", "bytes32", "uint256", "string", "bytes32", "bytes"] as const;
export const LEAF_FIELDS_V2 = ["teeId", "inputHash", "outputHash", "timestamp", "settlementType", "metadataHash", "teeSignature"] as const;
export const LEAF_TYPES_V1 = ["bytes32", "bytes32", "bytes32", "uint256", "bytes"] as const;
export const LEAF_FIELDS_V1 = ["teeId", "inputHash", "outputHash", "timestamp", "teeSignature"] as const;
/** The dump's own statement of its leaf encoding: "type name" per field. */
export const LEAF_ENCODING_V2 = LEAF_TYPES_V2.map((type, i) => `${type} ${LEAF_FIELDS_V2[i]}`);
export const LEAF_ENCODING_V1 = LEAF_TYPES_V1.map((type, i) => `${type} ${LEAF_FIELDS_V1[i]}`);

export const DUMP_FORMAT = "x402-inference-batch/2";
export const DUMP_FORMAT_V1 = "x402-inference-batch/1";
/**
 * Gateway batches: OpenGradient tee-gateway records (RSA-PSS over keccak256(inputHash ‖ outputHash ‖
 * timestamp)) in the gateway facilitator's leaf layout, which holds exactly what that signature covers.
 */
export const DUMP_FORMAT_GATEWAY = "x402-inference-batch/gateway-1";
export const LEAF_TYPES_GATEWAY = ["bytes32", "bytes32", "bytes32", "bytes", "uint256"] as const;
export const LEAF_FIELDS_GATEWAY = ["teeId", "inputHash", "outputHash", "teeSignature", "timestamp"] as const;
export const LEAF_ENCODING_GATEWAY = LEAF_TYPES_GATEWAY.map((type, i) => `${type} ${LEAF_FIELDS_GATEWAY[i]}`);
/**
 * The tree under a dump's `tree`: OpenZeppelin's `StandardMerkleTree.dump()` (nodes, and each value
 * with its slot), or the facilitator's compact form for large batches (`length` and `values`, the
 * packed leaf values in base64; no nodes, the tree is rebuilt). See @facilitator/merkle compact.ts.
 */
export const STANDARD_TREE_FORMAT = "standard-v1";
export const COMPACT_TREE_FORMAT = "compact-v1";

/** 1 and 2: our leaf encodings (TEE attestation v1, v2); "gateway": the tee-gateway's layout. */
export type LeafVersion = 1 | 2 | "gateway";

export interface InferenceLeaf {
  /** Leaf encoding (and TEE attestation) version, from the dump's format. */
  version: LeafVersion;
  teeId: Hex;
  inputHash: Hex;
  outputHash: Hex;
  timestamp: bigint;
  /** v2 only: what the TEE signed (always `settle-batch` in a batch) and its metadata hash (zero). */
  settlementType?: string;
  metadataHash?: Hex;
  teeSignature: Hex;
}

export const ZERO_BYTES32: Hex = `0x${"0".repeat(64)}`;

export const leafTypes = (version: LeafVersion): readonly string[] => (version === 2 ? LEAF_TYPES_V2 : version === "gateway" ? LEAF_TYPES_GATEWAY : LEAF_TYPES_V1);

/** The leaf as the tuple StandardMerkleTree encodes. */
export function leafTuple(leaf: InferenceLeaf): readonly unknown[] {
  if (leaf.version === "gateway") return [leaf.teeId, leaf.inputHash, leaf.outputHash, leaf.teeSignature, leaf.timestamp];
  return leaf.version === 2
    ? [leaf.teeId, leaf.inputHash, leaf.outputHash, leaf.timestamp, leaf.settlementType ?? "", leaf.metadataHash ?? ZERO_BYTES32, leaf.teeSignature]
    : [leaf.teeId, leaf.inputHash, leaf.outputHash, leaf.timestamp, leaf.teeSignature];
}

/**
 * EIP-712 typed data a TEE signs over an inference (no chainId: the attestation is chain-independent).
 * v2 covers the settlement type and a hash of the metadata, so a signature cannot be re-anchored
 * under another type or with other metadata.
 */
export const teeAttestationDomain = { name: "TEE Inference", version: "2" } as const;
export const teeAttestationTypes = {
  TeeAttestation: [
    { name: "teeId", type: "bytes32" },
    { name: "inputHash", type: "bytes32" },
    { name: "outputHash", type: "bytes32" },
    { name: "timestamp", type: "uint256" },
    { name: "settlementType", type: "string" },
    { name: "metadataHash", type: "bytes32" },
  ],
} as const;
export const teeAttestationDomainV1 = { name: "TEE Inference", version: "1" } as const;
export const teeAttestationTypesV1 = {
  TeeAttestation: [
    { name: "teeId", type: "bytes32" },
    { name: "inputHash", type: "bytes32" },
    { name: "outputHash", type: "bytes32" },
    { name: "timestamp", type: "uint256" },
  ],
} as const;

/** teeId (bytes32, lower-case hex) -> the address of the TEE's secp256k1 key. */
export type TeeKeys = Record<string, Address>;
