/**
 * The payload of an AWS Nitro attestation document, read by the syntax rules of the Nitro Enclaves
 * user guide ("Verifying the root of trust", attestation document specification):
 *
 *   module_id text (non-empty) · digest "SHA384" · timestamp uint, ms since the epoch (> 0) ·
 *   pcrs {uint 0..31 => bstr of 32, 48 or 64 bytes}, 1..32 entries · certificate bstr 1..1024 ·
 *   cabundle [bstr 1..1024, ...] (at least one, the root first) · public_key bstr 1..1024 or null ·
 *   user_data bstr 0..512 or null · nonce bstr 0..512 or null
 *
 * Pure: no crypto, no clock. Fields the specification may add later are ignored (they are signed
 * with the rest, so ignoring them trusts nothing unsigned).
 */
import { decodeCbor, type Parsed } from "./cose.ts";

export interface NitroDocument {
  moduleId: string;
  digest: "SHA384";
  /** ms since the epoch, as the Nitro Secure Module stamped it. */
  timestamp: number;
  pcrs: ReadonlyMap<number, Uint8Array>;
  /** DER of the certificate whose key signed the document. */
  certificate: Uint8Array;
  /** DER certificates, the root first, each issuing the next; the last one issues `certificate`. */
  cabundle: readonly Uint8Array[];
  publicKey?: Uint8Array;
  userData?: Uint8Array;
  nonce?: Uint8Array;
}

/** A certificate chain longer than this is refused before any signature is checked (Nitro's has 4-5). */
export const MAX_CABUNDLE = 8;

const isBytes = (v: unknown, min: number, max: number): v is Uint8Array => v instanceof Uint8Array && v.length >= min && v.length <= max;

export function parseNitroPayload(payload: Uint8Array): Parsed<NitroDocument> {
  const decoded = decodeCbor(payload, "the payload");
  if (!decoded.ok) return decoded;
  const map = decoded.value;
  if (!(map instanceof Map)) return { ok: false, error: "the payload is not a CBOR map" };
  const bad = (error: string) => ({ ok: false as const, error });
  const get = (key: string) => map.get(key);

  const moduleId = get("module_id");
  if (typeof moduleId !== "string" || moduleId.length === 0) return bad("module_id must be a non-empty text string");
  if (get("digest") !== "SHA384") return bad("digest must be SHA384");
  const timestamp = get("timestamp");
  if (typeof timestamp !== "number" || !Number.isSafeInteger(timestamp) || timestamp <= 0) return bad("timestamp must be a positive integer (ms)");

  const rawPcrs = get("pcrs");
  if (!(rawPcrs instanceof Map) || rawPcrs.size < 1 || rawPcrs.size > 32) return bad("pcrs must be a map of 1 to 32 entries");
  const pcrs = new Map<number, Uint8Array>();
  for (const [index, value] of rawPcrs) {
    if (typeof index !== "number" || !Number.isInteger(index) || index < 0 || index > 31) return bad("a PCR index must be an integer from 0 to 31");
    if (!(value instanceof Uint8Array) || ![32, 48, 64].includes(value.length)) return bad(`PCR${index} must be 32, 48 or 64 bytes`);
    pcrs.set(index, value);
  }

  const certificate = get("certificate");
  if (!isBytes(certificate, 1, 1024)) return bad("certificate must be a byte string of 1 to 1024 bytes");
  const cabundle = get("cabundle");
  if (!Array.isArray(cabundle) || cabundle.length < 1 || cabundle.length > MAX_CABUNDLE) {
    return bad(`cabundle must hold 1 to ${MAX_CABUNDLE} certificates`);
  }
  if (!cabundle.every((c) => isBytes(c, 1, 1024))) return bad("every cabundle entry must be a byte string of 1 to 1024 bytes");

  const optional = (key: string, min: number, max: number): Uint8Array | undefined | false => {
    const v = get(key);
    if (v === undefined || v === null) return undefined;
    return isBytes(v, min, max) ? v : false;
  };
  const publicKey = optional("public_key", 1, 1024);
  if (publicKey === false) return bad("public_key must be null or a byte string of 1 to 1024 bytes");
  const userData = optional("user_data", 0, 512);
  if (userData === false) return bad("user_data must be null or a byte string of at most 512 bytes");
  const nonce = optional("nonce", 0, 512);
  if (nonce === false) return bad("nonce must be null or a byte string of at most 512 bytes");

  return {
    ok: true,
    value: { moduleId, digest: "SHA384", timestamp, pcrs, certificate, cabundle: cabundle as Uint8Array[], publicKey, userData, nonce },
  };
}
