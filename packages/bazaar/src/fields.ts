/**
 * Field rules of the bazaar specification (extensions/bazaar.md): the route template a resource is
 * catalogued under, and the service metadata on `resource` (serviceName, tags, iconUrl). The spec
 * wants these soft: a field that breaks its rule is dropped (a bad template falls back to the paid
 * URL's path), the declaration is kept.
 */
import { domainToASCII } from "node:url";

const TEMPLATE_SHAPE = /^\/[a-zA-Z0-9_/:.\-~%]+$/;
/** Percent-decoding passes before a template counts as built to hide something. */
const DECODE_PASSES = 5;
/** Ours: the spec sets no length, and a catalogue key has no business being longer. */
export const MAX_ROUTE_TEMPLATE_LENGTH = 512;

export const MAX_SERVICE_NAME_LENGTH = 32;
export const MAX_TAG_LENGTH = 32;
export const MAX_TAGS = 5;
export const MAX_ICON_URL_LENGTH = 2048;

const PRINTABLE_ASCII = /^[\x20-\x7e]+$/;
const CONTROL = /[\x00-\x1f\x7f]/;
const LOOPBACK_NAMES = new Set(["localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"]);

/**
 * `/users/:id`-style templates only: safe path characters, and after percent-decoding (at any depth)
 * no `..` (traversal) and no `://` (another URL).
 */
export function isValidRouteTemplate(value: unknown): value is string {
  if (typeof value !== "string" || value.length > MAX_ROUTE_TEMPLATE_LENGTH || !TEMPLATE_SHAPE.test(value)) return false;
  const decoded = decodeFully(value);
  return decoded !== undefined && !decoded.includes("..") && !decoded.includes("://");
}

/** `value` percent-decoded until it stops changing; undefined when it cannot be decoded or keeps changing. */
function decodeFully(value: string): string | undefined {
  let current = value;
  for (let pass = 0; pass < DECODE_PASSES; pass++) {
    let next: string;
    try {
      next = decodeURIComponent(current);
    } catch {
      return undefined;
    }
    if (next === current) return current;
    current = next;
  }
  return undefined;
}

/** Non-empty printable ASCII of at most `max` characters (keeps lengths the same in every SDK's language). */
export function isShortAscii(value: unknown, max: number): value is string {
  return typeof value === "string" && value.length > 0 && value.length <= max && PRINTABLE_ASCII.test(value);
}

/** The first five acceptable tags, without case-insensitive repeats; undefined when none is left. */
export function cleanTags(value: unknown): string[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const kept: string[] = [];
  const seen = new Set<string>();
  for (const tag of value) {
    if (kept.length === MAX_TAGS) break;
    if (!isShortAscii(tag, MAX_TAG_LENGTH) || seen.has(tag.toLowerCase())) continue;
    seen.add(tag.toLowerCase());
    kept.push(tag);
  }
  return kept.length ? kept : undefined;
}

/**
 * An icon a catalogue UI may load: absolute http(s), no credentials, and a host name that is not an
 * address or a loopback name in any spelling (percent-encoded, full-width, decimal or hex), since
 * whoever renders it fetches it.
 */
export function isSafeIconUrl(value: unknown): value is string {
  if (typeof value !== "string" || !value || value.length > MAX_ICON_URL_LENGTH || CONTROL.test(value)) return false;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || url.username || url.password || url.host.startsWith("[")) return false;
  let host: string;
  try {
    host = domainToASCII(decodeURIComponent(url.hostname)).toLowerCase();
  } catch {
    return false;
  }
  if (!host || LOOPBACK_NAMES.has(host)) return false;
  return !/^\d{1,3}(\.\d{1,3}){3}$/.test(host) && !/^\d+$/.test(host) && !/^0x[0-9a-f]+$/.test(host);
}
