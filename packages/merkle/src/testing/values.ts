/** Deterministic leaf values for the tests and bench/tree.ts: the same index always gives the same value. */
import { createHash } from "node:crypto";

export const TYPES_V2 = ["bytes32", "bytes32", "bytes32", "uint256", "string", "bytes32", "bytes"];
export const TYPES_V1 = ["bytes32", "bytes32", "bytes32", "uint256", "bytes"];
const ZERO = `0x${"0".repeat(64)}`;

const digest = (s: string) => createHash("sha256").update(s).digest("hex");

/**
 * Leaf encoding v2 values as the facilitator batches them: every other leaf TEE-signed (65 bytes),
 * the rest with zero TEE fields; one value in 1,000 repeats an earlier one, so equal leaves occur.
 */
export function batchValuesV2(n: number, salt = ""): string[][] {
  const value = (i: number): string[] => {
    const signed = i % 2 === 1;
    return [
      signed ? `0x${digest(`tee${salt}`)}` : ZERO,
      `0x${digest(`in${salt}${i}`)}`,
      `0x${digest(`out${salt}${i}`)}`,
      signed ? String(1_700_000_000 + i) : "0",
      "settle-batch",
      ZERO,
      signed ? `0x${digest(`r${salt}${i}`)}${digest(`s${salt}${i}`)}1b` : "0x",
    ];
  };
  return Array.from({ length: n }, (_, i) => value(i % 1000 === 999 ? i - 500 : i));
}
