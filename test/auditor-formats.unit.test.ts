/**
 * The auditor restates the pipeline's formats instead of importing @facilitator/inference (whose
 * index loads its queues and stores). These tests hold the two to the same formats: the pipeline's
 * are authoritative, and a change there fails here.
 */
import { describe, expect, it } from "vitest";
import { getAbiItem, keccak256, toHex } from "viem";
import {
  BATCH_DUMP_FORMAT,
  buildBatchTree,
  LEAF_ENCODING_V2 as PIPELINE_LEAF_ENCODING,
  LEAF_TYPES_V2 as PIPELINE_LEAF_TYPES,
  recordId,
  SETTLEMENT_RELAY_ABI,
  signTeeRecord,
  TEE_DOMAIN,
  TEE_TYPES,
  type InferenceRecord,
} from "@facilitator/inference";
import {
  checkTeeSignature,
  DUMP_FORMAT,
  LEAF_ENCODING_V2,
  LEAF_TYPES_V2,
  parseBatchDump,
  rebuildTree,
  relayAbi,
  teeAttestationDomain,
  teeAttestationTypes,
} from "@facilitator/auditor";
import { privateKeyToAccount } from "viem/accounts";

describe("the auditor reads the pipeline's formats", () => {
  it("names the same dump format, leaf encoding and TEE typed data", () => {
    expect(DUMP_FORMAT).toBe(BATCH_DUMP_FORMAT);
    expect(LEAF_ENCODING_V2).toEqual([...PIPELINE_LEAF_ENCODING]);
    expect([...LEAF_TYPES_V2]).toEqual([...PIPELINE_LEAF_TYPES]);
    expect(teeAttestationDomain).toEqual(TEE_DOMAIN);
    expect(teeAttestationTypes).toEqual(TEE_TYPES);
  });

  it.each(["Settlement", "SettlementWithMetadata", "BatchSettlement", "anchoredAt"] as const)("reads %s as the relay declares it", (name) => {
    expect(getAbiItem({ abi: relayAbi, name })).toEqual(getAbiItem({ abi: SETTLEMENT_RELAY_ABI, name: name as never }));
  });

  it("recomputes the root of a dump built by the pipeline and accepts its TEE signatures", async () => {
    const teeKey = keccak256(toHex("formats tee"));
    const teeId = keccak256(toHex("formats tee id"));
    const records: InferenceRecord[] = [0, 1, 2, 3, 4].map((i) => {
      const record: InferenceRecord = { inputHash: keccak256(toHex(`in ${i}`)), outputHash: keccak256(toHex(`out ${i}`)), settlementType: "settle-batch" };
      return i % 2 === 0 ? signTeeRecord({ teeId, privateKey: teeKey }, { ...record, teeTimestamp: String(1000 + i) }) : record;
    });
    const batch = buildBatchTree(records, records.map(recordId), "2025-01-01T00:00:00.000Z");
    const parsed = parseBatchDump(new TextEncoder().encode(batch.dumpJson));
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    const rebuilt = rebuildTree(parsed.value.leaves, parsed.value.treeIndices);
    expect(rebuilt.ok && rebuilt.root).toBe(batch.root);
    expect(parsed.value.recordIds).toEqual(records.map(recordId));
    const verdicts = await Promise.all(parsed.value.leaves.map((l) => checkTeeSignature(l, { [teeId]: privateKeyToAccount(teeKey).address })));
    expect(verdicts.map((v) => v.status)).toEqual(["valid", "absent", "valid", "absent", "valid"]);
  });
});
