/**
 * The tee-gateway's intake, `POST /settle_data`, as OpenGradient's inference facilitator defines it:
 *
 *   x-settlement-type   private | batch | individual
 *   x-settlement-data   base64 of a JSON object (absent for private):
 *     batch:       tee_id, input_hash, output_hash, tee_signature (base64 RSA-PSS), tee_timestamp
 *     individual:  the same, and input, output, timestamp, eth_address
 *
 * Hashes may come with or without 0x (the gateway writes Python's `.hex()`). Pure: turns the headers
 * into a record input for `InferenceService.submit`, which checks the signature and the TEE.
 *
 * The gateway signs keccak256(inputHash ‖ outputHash ‖ tee_timestamp) and nothing else, so nothing else
 * is anchored as attested: `individual`'s input and output must hash to the signed hashes the way the
 * gateway computes them (keccak256 of the request bytes, and of the response text as UTF-8), or the
 * record is refused; `timestamp` and `eth_address`, which nobody signed, are checked and dropped.
 * Both types are anchored alike, in gateway batches (see gateway-merkle.ts).
 */
import { Reason, reject, type Rejection } from "@facilitator/core";
import { decodeBase64 } from "@facilitator/tee";
import { isAddress, keccak256, stringToBytes, type Hex } from "viem";
import { GATEWAY_SCHEME } from "./records.ts";
import type { HeaderBag } from "./settle-headers.ts";

export const GATEWAY_SETTLEMENT_TYPES = ["private", "batch", "individual"] as const;
export type GatewaySettlementType = (typeof GATEWAY_SETTLEMENT_TYPES)[number];

export type SettleData =
  /** Acknowledged and ignored, as the gateway's own facilitator does. */
  | { kind: "private" }
  | { kind: "record"; settlementType: "batch" | "individual"; input: Record<string, unknown> }
  | { kind: "refused"; error: Rejection };

const HEX32 = /^(0x)?[0-9a-fA-F]{64}$/;
const UINT = /^\d{1,78}$/;

const header = (headers: HeaderBag, name: string): string | undefined => {
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return (Array.isArray(v) ? v[0] : v)?.trim();
  return undefined;
};
const refused = (message: string, reason: Rejection["reason"] = Reason.invalidSettlementData): SettleData => ({ kind: "refused", error: reject(reason, message) });
const hex32 = (v: unknown): Hex | undefined => (typeof v === "string" && HEX32.test(v) ? (`0x${v.replace(/^0x/, "").toLowerCase()}` as Hex) : undefined);
const uint = (v: unknown): string | undefined => {
  if (typeof v === "number") return Number.isSafeInteger(v) && v >= 0 ? String(v) : undefined;
  return typeof v === "string" && UINT.test(v.trim()) && BigInt(v.trim()) < 2n ** 256n ? BigInt(v.trim()).toString() : undefined;
};

/** Reads the headers of one /settle_data request. */
export function settleDataFromHeaders(headers: HeaderBag): SettleData {
  const type = header(headers, "x-settlement-type")?.toLowerCase();
  if (!type) return refused(`x-settlement-type is required (${GATEWAY_SETTLEMENT_TYPES.join(", ")})`, Reason.invalidSettlementType);
  if (!(GATEWAY_SETTLEMENT_TYPES as readonly string[]).includes(type)) {
    return refused(`x-settlement-type must be one of ${GATEWAY_SETTLEMENT_TYPES.join(", ")}`, Reason.invalidSettlementType);
  }
  if (type === "private") return { kind: "private" };
  const raw = header(headers, "x-settlement-data");
  if (!raw) return refused(`x-settlement-data is required for settlement type ${type}`);
  const bytes = decodeBase64(raw);
  let data: unknown;
  try {
    data = bytes && JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    data = undefined;
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) return refused("x-settlement-data must be standard base64 of a JSON object");
  return settleDataRecord(type as "batch" | "individual", data as Record<string, unknown>);
}

/** The record input of a decoded `batch` or `individual` payload, or why there is none. */
export function settleDataRecord(type: "batch" | "individual", d: Record<string, unknown>): SettleData {
  const teeId = hex32(d.tee_id);
  const inputHash = hex32(d.input_hash);
  const outputHash = hex32(d.output_hash);
  const teeTimestamp = uint(d.tee_timestamp);
  if (!teeId) return refused("tee_id must be 32 bytes of hex");
  if (!inputHash || !outputHash) return refused("input_hash and output_hash must be 32 bytes of hex each");
  if (teeTimestamp === undefined) return refused("tee_timestamp must be a non-negative integer below 2^256");
  if (typeof d.tee_signature !== "string" || d.tee_signature === "") return refused("tee_signature must be the base64 RSA-PSS signature");
  if (type === "individual") {
    const problem = individualProblem(d, inputHash, outputHash);
    if (problem) return { kind: "refused", error: problem };
  }
  return {
    kind: "record",
    settlementType: type,
    input: { teeId, inputHash, outputHash, teeTimestamp, teeSignature: d.tee_signature, signatureScheme: GATEWAY_SCHEME, settlementType: "settle-batch" },
  };
}

/** What makes an `individual` payload's unsigned parts unacceptable: input and output must be what was signed. */
function individualProblem(d: Record<string, unknown>, inputHash: Hex, outputHash: Hex): Rejection | undefined {
  if (typeof d.input !== "string") return reject(Reason.invalidSettlementData, "input must be the request body as text (the gateway signs keccak256 of its bytes)");
  if (typeof d.output !== "string") return reject(Reason.invalidSettlementData, "output must be the response text (the gateway signs keccak256 of its UTF-8 bytes)");
  if (uint(d.timestamp) === undefined) return reject(Reason.invalidSettlementData, "timestamp must be a non-negative integer");
  if (typeof d.eth_address !== "string" || !isAddress(d.eth_address, { strict: false })) return reject(Reason.invalidSettlementData, "eth_address must be an address");
  const inputDigest = keccak256(stringToBytes(d.input));
  if (inputDigest !== inputHash) return reject(Reason.gatewayInputMismatch, `keccak256(input) is ${inputDigest}, not the signed input_hash ${inputHash}`);
  const outputDigest = keccak256(stringToBytes(d.output));
  if (outputDigest !== outputHash) return reject(Reason.gatewayOutputMismatch, `keccak256(output) is ${outputDigest}, not the signed output_hash ${outputHash}`);
  return undefined;
}
