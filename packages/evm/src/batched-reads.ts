/** Reading the answers of chain reads issued together (one JSON-RPC batch) and collected with `Promise.allSettled`. */

/** Whether an eth_getCode answer from a batched read shows deployed code. */
export function hasCode(result: PromiseSettledResult<unknown>): boolean {
  if (result.status === "rejected") throw result.reason;
  return typeof result.value === "string" && result.value !== "0x" && result.value !== "0x0";
}

/** A single 32-byte return word, or undefined when the call reverted or returned something else. */
export function word(result: PromiseSettledResult<unknown>): bigint | undefined {
  if (result.status !== "fulfilled" || typeof result.value !== "string" || result.value.length !== 66) return undefined;
  return BigInt(result.value);
}
