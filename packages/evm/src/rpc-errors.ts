/** Reading viem/JSON-RPC errors: did the node answer (a revert, a rejection) or did the request not get through? */
import { BaseError, decodeErrorResult, HttpRequestError, TimeoutError, type Hex } from "viem";

const TRANSIENT_HTTP_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);
/** JSON-RPC codes nodes use for "try again": limit exceeded, resource unavailable. */
const TRANSIENT_RPC_CODES = new Set([-32005, -32002]);

function* chain(error: unknown): Generator<Record<string, unknown>> {
  for (let e = error as Record<string, unknown> | undefined, depth = 0; e && depth < 10; e = e.cause as typeof e, depth++) yield e;
}

/** True when the request may not have reached the node, or the node asked us to retry: nothing was decided. */
export function isTransientRpcError(error: unknown): boolean {
  for (const e of chain(error)) {
    if (e instanceof TimeoutError) return true;
    if (e instanceof HttpRequestError) return e.status === undefined || TRANSIENT_HTTP_STATUS.has(e.status);
    if (typeof e.code === "number" && TRANSIENT_RPC_CODES.has(e.code)) return true;
  }
  // Fetch and socket failures surface as plain errors without a JSON-RPC code.
  return !hasRpcCode(error);
}

function hasRpcCode(error: unknown): boolean {
  for (const e of chain(error)) if (typeof e.code === "number") return true;
  return false;
}

/** The node's own words (e.g. "nonce too low", "execution reverted: ..."), not viem's wrapper text. */
export function nodeMessage(error: unknown): string {
  let best = "";
  for (const e of chain(error)) {
    const text = (typeof e.details === "string" && e.details) || (e instanceof BaseError ? e.shortMessage : (e.message as string | undefined));
    if (text) best = text;
  }
  return best || String(error);
}

/** A revert's reason: decoded `Error(string)` / `Panic(uint256)` data when present, else the node's message. */
export function revertReason(error: unknown): string {
  for (const e of chain(error)) {
    if (typeof e.data === "string" && /^0x[0-9a-fA-F]{8,}$/.test(e.data)) {
      try {
        const decoded = decodeErrorResult({ abi: [], data: e.data as Hex });
        return decoded.errorName === "Error" ? String(decoded.args?.[0]) : `${decoded.errorName}(${decoded.args?.join(", ")})`;
      } catch {
        return `custom error ${e.data.slice(0, 10)}`;
      }
    }
  }
  return nodeMessage(error);
}
