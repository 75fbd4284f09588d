/**
 * Inference records that ride on `/settle` (the published inference facilitator's headers):
 *
 *   x-input-hash, x-output-hash   32-byte hex (both, or neither)
 *   x-settlement-type             settle | settle-metadata | settle-batch   (default: settle)
 *   x-settlement-metadata         base64 of JSON {modelInfo, inputData, outputData} (settle-metadata)
 *   x-tee-id, x-tee-timestamp, x-tee-signature   optional TEE attestation (see tee.ts)
 *
 * Pure: turns headers into a record input for `InferenceService.submit`; validation happens there,
 * origin included: a registered TEE's signature, or an inference key the server found on the request
 * (`X-Inference-Authorization`, see packages/server/src/inference-auth.ts).
 */
import { Reason, reject, type Rejection } from "@facilitator/core";
import type { SettlementType } from "./records.ts";

export const SETTLE_HEADER_DEFAULT_TYPE: SettlementType = "settle";

export type HeaderBag = Record<string, string | string[] | undefined>;

const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v)?.trim();

/**
 * The record input carried by these headers, undefined when they carry none, or the reason the
 * headers cannot form one. Header names are matched case-insensitively.
 */
export function recordInputFromSettleHeaders(
  headers: HeaderBag,
  payment?: { network: string; transaction: string },
): { input: Record<string, unknown> } | { error: Rejection } | undefined {
  const h: HeaderBag = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  const inputHash = first(h["x-input-hash"]);
  const outputHash = first(h["x-output-hash"]);
  if (!inputHash && !outputHash) return undefined;
  if (!inputHash || !outputHash) {
    return { error: reject(Reason.invalidInferenceRecord, "x-input-hash and x-output-hash must be sent together") };
  }
  const input: Record<string, unknown> = {
    inputHash,
    outputHash,
    settlementType: first(h["x-settlement-type"]) || SETTLE_HEADER_DEFAULT_TYPE,
  };
  const metadata = first(h["x-settlement-metadata"]);
  if (metadata) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(metadata, "base64").toString("utf8"));
    } catch {
      return { error: reject(Reason.invalidInferenceRecord, "x-settlement-metadata must be base64 of a JSON object {modelInfo, inputData, outputData}") };
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      return { error: reject(Reason.invalidInferenceRecord, "x-settlement-metadata must be base64 of a JSON object {modelInfo, inputData, outputData}") };
    }
    for (const [k, v] of Object.entries(parsed)) {
      if (!["modelInfo", "inputData", "outputData"].includes(k)) {
        return { error: reject(Reason.invalidInferenceRecord, `x-settlement-metadata has an unknown field ${k}`) };
      }
      input[k] = v;
    }
  }
  const teeId = first(h["x-tee-id"]);
  const teeTimestamp = first(h["x-tee-timestamp"]);
  const teeSignature = first(h["x-tee-signature"]);
  if (teeId) input.teeId = teeId;
  if (teeTimestamp) input.teeTimestamp = teeTimestamp;
  if (teeSignature) input.teeSignature = teeSignature;
  if (payment) input.payment = { network: payment.network, transaction: payment.transaction };
  return { input };
}
