/**
 * API keys for operators: `Authorization: Bearer <key>` or `x-api-key: <key>` (the official clients
 * send either through `createAuthHeaders`). Keys are compared as SHA-256 digests with
 * `timingSafeEqual`, so neither a key's content nor its length shows in the answer time.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { Request, RequestHandler } from "express";
import { Reason } from "@facilitator/core";
import { refuse } from "./rejection.ts";

const digest = (key: string): Buffer => createHash("sha256").update(key, "utf8").digest();

/** The key a request presents, if any (Bearer token first, then `x-api-key`). */
export function presentedApiKey(req: Request): string | undefined {
  const auth = req.get("authorization");
  const bearer = auth ? /^Bearer\s+(\S+)\s*$/i.exec(auth)?.[1] : undefined;
  if (bearer) return bearer;
  const header = req.get("x-api-key")?.trim();
  return header || undefined;
}

/**
 * A short, non-reversible name for a key (hex of its digest), safe for logs, metrics and rate-limit
 * buckets: the key itself never leaves this module.
 */
export function apiKeyId(key: string): string {
  return digest(key).toString("hex").slice(0, 16);
}

/**
 * Express middleware: passes everything when `keys` is empty; otherwise only requests presenting one
 * of `keys`. Others get 401 in the endpoint's protocol shape and go no further. On success the key's
 * id is left in `res.locals.apiKeyId` (the rate limiter buckets by it).
 */
export function apiKeyGuard(keys: readonly string[]): RequestHandler {
  const accepted = keys.filter(Boolean).map(digest);
  if (accepted.length === 0) return (_req, _res, next) => next();
  return (req, res, next) => {
    const key = presentedApiKey(req);
    if (key !== undefined) {
      const presented = digest(key);
      // Compare against every key without stopping early, so the time does not tell which one matched.
      let match = false;
      for (const k of accepted) match = timingSafeEqual(presented, k) || match;
      if (match) {
        res.locals.apiKeyId = apiKeyId(key);
        return next();
      }
    }
    res.set("WWW-Authenticate", 'Bearer realm="x402-facilitator"');
    const message = key === undefined
      ? "this facilitator requires an API key: send Authorization: Bearer <key> or x-api-key: <key>"
      : "the API key is not valid for this facilitator";
    refuse(req, res, 401, Reason.unauthorized, message);
  };
}
