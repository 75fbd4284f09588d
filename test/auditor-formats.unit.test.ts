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
  buildGatewayBatchTree,
  GATEWAY_DUMP_FORMAT,
  GATEWAY_LEAF_ENCODING,
  COMPACT_TREE_FORMAT as PIPELINE_COMPACT_TREE_FORMAT,
  STANDARD_TREE_FORMAT as PIPELINE_STANDARD_TREE_FORMAT,
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
  COMPACT_TREE_FORMAT,
  DUMP_FORMAT,
  DUMP_FORMAT_GATEWAY,
  LEAF_ENCODING_GATEWAY,
  STANDARD_TREE_FORMAT,
  LEAF_ENCODING_V2,
  LEAF_TYPES_V2,
  parseBatchDump,
  proofFromTree,
  rebuildTree,
  relayAbi,
  teeAttestationDomain,
  teeAttestationTypes,
} from "@facilitator/auditor";
import { privateKeyToAccount } from "viem/accounts";
import { generateGatewayKey, inferenceMessageHash, signRsaPss } from "@facilitator/tee";

describe("the auditor reads the pipeline's formats", () => {
  it("names the same dump format, leaf encoding and TEE typed data", () => {
    expect(DUMP_FORMAT).toBe(BATCH_DUMP_FORMAT);
    expect([STANDARD_TREE_FORMAT, COMPACT_TREE_FORMAT]).toEqual([PIPELINE_STANDARD_TREE_FORMAT, PIPELINE_COMPACT_TREE_FORMAT]);
    expect(LEAF_ENCODING_V2).toEqual([...PIPELINE_LEAF_ENCODING]);
    expect([...LEAF_TYPES_V2]).toEqual([...PIPELINE_LEAF_TYPES]);
    expect(teeAttestationDomain).toEqual(TEE_DOMAIN);
    expect(teeAttestationTypes).toEqual(TEE_TYPES);
  });

  it.each(["Settlement", "SettlementWithMetadata", "BatchSettlement", "anchoredAt"] as const)("reads %s as the relay declares it", (name) => {
    expect(getAbiItem({ abi: relayAbi, name })).toEqual(getAbiItem({ abi: SETTLEMENT_RELAY_ABI, name: name as never }));
  });

  it.each([
    ["standard", undefined],
    ["compact", 0],
  ])("recomputes the root of a %s dump built by the pipeline and accepts its TEE signatures", async (form, compactAbove) => {
    const teeKey = keccak256(toHex("formats tee"));
    const teeId = keccak256(toHex("formats tee id"));
    const records: InferenceRecord[] = [0, 1, 2, 3, 4].map((i) => {
      const record: InferenceRecord = { inputHash: keccak256(toHex(`in ${i}`)), outputHash: keccak256(toHex(`out ${i}`)), settlementType: "settle-batch" };
      return i % 2 === 0 ? signTeeRecord({ teeId, privateKey: teeKey }, { ...record, teeTimestamp: String(1000 + i) }) : record;
    });
    const batch = buildBatchTree(records, records.map(recordId), "2025-01-01T00:00:00.000Z", { compactAbove });
    expect(JSON.parse(batch.dumpJson).tree.format).toBe(form === "compact" ? COMPACT_TREE_FORMAT : STANDARD_TREE_FORMAT);
    const parsed = parseBatchDump(new TextEncoder().encode(batch.dumpJson));
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    const rebuilt = rebuildTree(parsed.value.leaves, parsed.value.treeIndices);
    expect(rebuilt.ok && rebuilt.root).toBe(batch.root);
    records.forEach((_, i) => expect(rebuilt.ok && proofFromTree(rebuilt.tree, rebuilt.treeIndices[i]!)).toEqual(batch.proof(i)));
    expect(parsed.value.recordIds).toEqual(records.map(recordId));
    const verdicts = await Promise.all(parsed.value.leaves.map((l) => checkTeeSignature(l, { [teeId]: privateKeyToAccount(teeKey).address })));
    expect(verdicts.map((v) => v.status)).toEqual(["valid", "absent", "valid", "absent", "valid"]);
  });

  it.each([
    ["standard", undefined],
    ["compact", 0],
  ])("reads a %s gateway dump (the tee-gateway's leaf layout) built by the pipeline, and its RSA-PSS signatures", async (_form, compactAbove) => {
    expect([DUMP_FORMAT_GATEWAY, LEAF_ENCODING_GATEWAY]).toEqual([GATEWAY_DUMP_FORMAT, [...GATEWAY_LEAF_ENCODING]]);
    const gw = generateGatewayKey();
    const records: InferenceRecord[] = [0, 1, 2].map((i) => {
      const inputHash = keccak256(toHex(`gw in ${i}`));
      const outputHash = keccak256(toHex(`gw out ${i}`));
      const sig = signRsaPss(gw.privateKeyPem, inferenceMessageHash(inputHash, outputHash, BigInt(1000 + i)));
      return { inputHash, outputHash, settlementType: "settle-batch", teeId: gw.teeId, teeTimestamp: String(1000 + i), teeSignature: toHex(Buffer.from(sig, "base64")), signatureScheme: "rsa-pss-sha256" };
    });
    const batch = buildGatewayBatchTree(records, records.map(recordId), "2025-01-01T00:00:00.000Z", { compactAbove });
    const parsed = parseBatchDump(new TextEncoder().encode(batch.dumpJson));
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.value.version).toBe("gateway");
    const rebuilt = rebuildTree(parsed.value.leaves, parsed.value.treeIndices);
    expect(rebuilt.ok && rebuilt.root).toBe(batch.root);
    const verdicts = await Promise.all(parsed.value.leaves.map((l) => checkTeeSignature(l, {}, { scheme: "rsa-pss-sha256", publicKey: gw.publicKey })));
    expect(verdicts.map((v) => v.status)).toEqual(["valid", "valid", "valid"]);
  });
});
