/**
 * Merkle batches of tee-gateway records, in the leaf layout of the gateway's own facilitator
 * (OpenGradient inference-facilitator, `flushBatchSettlementBuffer`):
 *
 *   leaf fields:  bytes32 teeId, bytes32 inputHash, bytes32 outputHash, bytes teeSignature, uint256 timestamp
 *   leaf hash:    OpenZeppelin StandardMerkleTree (keccak256 of keccak256 of the ABI encoding)
 *
 * so that a proof from us checks wherever theirs does. The RSA-PSS signature covers only the two
 * hashes and the time (keccak256(inputHash ‖ outputHash ‖ timestamp)), which is all the leaf holds:
 * nothing unsigned is presented as attested. The dump is ours (the envelope of batch-dump.ts, so readers
 * find `recordIds` and `createdAt` where they always do) under its own format name,
 * `x402-inference-batch/gateway-1`, and its `leafEncoding` names the fields above: an auditor knows
 * from the dump alone which layout it reads.
 */
import { verifyProof } from "@facilitator/merkle";
import type { Hex } from "viem";
import { dumpedTree, leafTypesOf, loadDump, type DumpedTree, type DumpLayout, type DumpOptions, type LoadedDump } from "./batch-dump.ts";
import { ZERO_BYTES32 } from "./merkle.ts";
import { GATEWAY_SCHEME, type InferenceRecord } from "./records.ts";

export const GATEWAY_LEAF_ENCODING = ["bytes32 teeId", "bytes32 inputHash", "bytes32 outputHash", "bytes teeSignature", "uint256 timestamp"] as const;
export const GATEWAY_DUMP_FORMAT = "x402-inference-batch/gateway-1";
export const GATEWAY_LAYOUT: DumpLayout = { format: GATEWAY_DUMP_FORMAT, leafEncoding: GATEWAY_LEAF_ENCODING };
export const GATEWAY_LEAF_TYPES = leafTypesOf(GATEWAY_LAYOUT);

/** [teeId, inputHash, outputHash, teeSignature, timestamp (decimal string)]. */
export type GatewayLeafValue = [Hex, Hex, Hex, Hex, string];
export type GatewayBatchTree = DumpedTree<GatewayLeafValue>;

export function gatewayLeafValue(r: InferenceRecord): GatewayLeafValue {
  if (r.signatureScheme !== GATEWAY_SCHEME || !r.teeSignature) throw new Error("a gateway leaf needs a gateway record (RSA-PSS signature)");
  return [r.teeId ?? ZERO_BYTES32, r.inputHash, r.outputHash, r.teeSignature, r.teeTimestamp ?? "0"];
}

/** The tree of a gateway batch; deterministic like buildBatchTree (same records, same order, same bytes). */
export function buildGatewayBatchTree(records: readonly InferenceRecord[], recordIds: readonly string[], createdAt: string, opts: DumpOptions = {}): GatewayBatchTree {
  return dumpedTree(GATEWAY_LAYOUT, records.map(gatewayLeafValue), recordIds, createdAt, opts);
}

/** Parses a gateway dump and recomputes its root from the values (a standard dump's nodes must all agree). */
export function loadGatewayBatchDump(json: string | Uint8Array): LoadedDump<GatewayLeafValue> {
  return loadDump(GATEWAY_LAYOUT, json);
}

export function verifyGatewayLeafProof(root: Hex, record: InferenceRecord, proof: readonly Hex[]): boolean {
  return verifyProof(root, GATEWAY_LEAF_TYPES, gatewayLeafValue(record), proof);
}
