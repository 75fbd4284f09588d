/** Byte encodings at the edges: strict base64 (what the gateway sends) and hex. */
import { hexToBytes, isHex, type Hex } from "viem";

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Standard base64 (RFC 4648, section 4, padded), or undefined. Node's `Buffer.from(s, "base64")`
 * skips characters it does not know, so two different strings would decode to one signature.
 */
export function decodeBase64(text: string): Uint8Array | undefined {
  return BASE64.test(text) ? new Uint8Array(Buffer.from(text, "base64")) : undefined;
}

export const encodeBase64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64");

/** Bytes given as a Uint8Array or 0x-hex; throws on anything else. */
export function asBytes(value: Uint8Array | Hex, what: string): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (typeof value === "string" && isHex(value, { strict: true }) && value.length % 2 === 0) return hexToBytes(value);
  throw new Error(`${what} must be bytes or 0x-prefixed hex`);
}
