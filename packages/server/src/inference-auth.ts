/**
 * Who posted an inference record carried in `/settle` headers: a caller holding an inference key
 * (INFERENCE_API_KEYS), or anyone.
 *
 * A resource server whose facilitator also wants a payment key (API_KEYS) sends two credentials on
 * `/settle`, both through the official clients' `createAuthHeaders`:
 *
 *   Authorization: Bearer <payment key>                  checked by the API_KEYS guard
 *   X-Inference-Authorization: Bearer <inference key>    checked here
 *
 * The inference key is accepted from `X-Inference-Authorization`, or from `Authorization` /
 * `x-api-key` when the key presented there is itself an inference key (a deployment without API_KEYS,
 * or one that lists the same key in both). Keys are compared as SHA-256 digests with
 * `timingSafeEqual`, against every key, so the time tells neither which key matched nor its length.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { HeaderBag } from "@facilitator/inference";

export const INFERENCE_AUTH_HEADER = "x-inference-authorization";

export interface InferenceCaller {
  /** A valid inference key was presented. */
  authenticated: boolean;
  /** Some inference credential was presented in X-Inference-Authorization, valid or not (for messages). */
  presentedInferenceHeader: boolean;
}

const digest = (key: string): Buffer => createHash("sha256").update(key, "utf8").digest();
const header = (headers: HeaderBag, name: string): string | undefined => {
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return (Array.isArray(v) ? v[0] : v)?.trim();
  return undefined;
};
const bearer = (value: string | undefined): string | undefined => (value ? /^Bearer\s+(\S+)$/i.exec(value)?.[1] : undefined);

/** A function telling, from a request's headers, whether the caller holds one of `keys`. */
export function inferenceCaller(keys: readonly string[]): (headers: HeaderBag) => InferenceCaller {
  const accepted = keys.filter(Boolean).map(digest);
  const matches = (key: string | undefined): boolean => {
    if (key === undefined || accepted.length === 0) return false;
    const presented = digest(key);
    let match = false;
    for (const k of accepted) match = timingSafeEqual(presented, k) || match;
    return match;
  };
  return (headers) => {
    const own = header(headers, INFERENCE_AUTH_HEADER);
    const candidates = [bearer(own), bearer(header(headers, "authorization")), header(headers, "x-api-key") || undefined];
    let authenticated = false;
    for (const c of candidates) authenticated = matches(c) || authenticated;
    return { authenticated, presentedInferenceHeader: own !== undefined && own !== "" };
  };
}
