/**
 * The bazaar discovery extension over HTTP: the two public discovery endpoints (anyone may read the
 * catalogue, as with the reference facilitator), and the EXTENSION-RESPONSES answer to a /verify or
 * /settle whose payment declares a resource.
 *
 *   GET /discovery/resources?type&payTo&scheme&network&extensions&limit&offset
 *     200 {x402Version: 2, items, pagination: {limit, offset, total}}
 *   GET /discovery/search?query&type&payTo&scheme&network&extensions&limit&cursor
 *     200 {x402Version: 2, resources, partialResults, pagination: {limit, cursor}}
 *   400 {error: "invalid_query", message}; 429 past RATE_LIMIT_PER_MINUTE; 503 {error: "catalog_unavailable"}
 *
 * Items are data from payers: they are served as JSON only, with `nosniff` and markup characters escaped.
 */
import { Router, type RequestHandler } from "express";
import type { Logger } from "pino";
import { encodeExtensionResponses, parseListQuery, parseSearchQuery, readDeclaration, type BazaarResponse, type Catalog } from "@facilitator/bazaar";
import type { ExtensionResponder } from "../app.ts";
import { refuse } from "../ops/rejection.ts";

export interface DiscoveryRoutesOptions {
  /** Run before each query (a rate limiter). */
  guards?: RequestHandler[];
  logger?: Pick<Logger, "warn">;
}

export function discoveryRoutes(catalog: Catalog, opts: DiscoveryRoutesOptions = {}): Router {
  const router = Router();
  const unavailable = { reason: "catalog_unavailable", message: "the catalogue cannot be read right now; try again shortly", log: "the bazaar catalogue could not be read" };
  router.get("/discovery/resources", ...(opts.guards ?? []), jsonQueryRoute(parseListQuery, (q) => catalog.list(q), unavailable, opts.logger));
  router.get("/discovery/search", ...(opts.guards ?? []), jsonQueryRoute(parseSearchQuery, (q) => catalog.search(q), unavailable, opts.logger));
  return router;
}

/**
 * A GET route answering `run(query)` as escaped JSON with `nosniff`: 400 `invalid_query` with the
 * parser's reason for a bad query string, 503 `unavailable.reason` when `run` throws (the detail to the log).
 */
export function jsonQueryRoute<Q>(
  parse: (raw: Record<string, unknown>) => { ok: true; query: Q } | { ok: false; message: string },
  run: (q: Q) => Promise<unknown>,
  unavailable: { reason: string; message: string; log: string },
  logger?: { warn(obj: object, msg: string): void },
): RequestHandler {
  return async (req, res) => {
    res.set("X-Content-Type-Options", "nosniff");
    const parsed = parse(req.query as Record<string, unknown>);
    if (!parsed.ok) return refuse(req, res, 400, "invalid_query", parsed.message);
    try {
      res.type("json").send(escapedJson(await run(parsed.query)));
    } catch (err) {
      logger?.warn({ err }, unavailable.log);
      refuse(req, res, 503, unavailable.reason, unavailable.message);
    }
  };
}

/**
 * JSON with `<`, `>` and `&` (and the two line separators) as \u escapes: the same data once parsed,
 * but no `<script>` a payer put in a field appears as markup in the bytes, whatever reads them.
 */
export function escapedJson(body: unknown): string {
  return JSON.stringify(body).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}


/**
 * The bazaar's part of EXTENSION-RESPONSES: a declaration that breaks the rules is `rejected` with its
 * reason on /verify and /settle alike (before money moves, where it can); a valid one is catalogued
 * when its payment settles, answered `success`, or `rejected` past a quota.
 */
export function bazaarExtensionResponses(
  catalog: Catalog,
  logger: Pick<Logger, "info" | "warn">,
  /** How long a settle's answer waits for the catalogue's write before saying `processing` (the write goes on). */
  waitMs = 1_000,
): ExtensionResponder {
  return async (action, body, outcome) => {
    const declaration = readDeclaration((body as { paymentPayload?: unknown } | null)?.paymentPayload, outcome.payer);
    if (declaration.kind === "none") return undefined;
    let response: BazaarResponse | undefined;
    if (declaration.kind === "refused") response = { status: "rejected", rejectedReason: `${declaration.reason}: ${declaration.message}` };
    // Only a settled payment brings a resource in: until then there is nothing to say.
    else if (action === "settle" && outcome.ok) response = await record(catalog, declaration.draft, outcome.payer, logger, waitMs);
    if (!response) return undefined;
    if (response.status === "rejected") logger.info({ event: "bazaar_rejected", action, reason: response.rejectedReason.split(":")[0] }, "bazaar declaration not catalogued");
    return encodeExtensionResponses({ bazaar: response });
  };
}

async function record(catalog: Catalog, draft: Parameters<Catalog["record"]>[0], payer: string | undefined, logger: Pick<Logger, "warn">, waitMs: number): Promise<BazaarResponse> {
  const writing = catalog.record(draft, payer).catch((err: unknown): BazaarResponse => {
    logger.warn({ err }, "the bazaar catalogue could not be written");
    return { status: "rejected", rejectedReason: "catalog_unavailable: the catalogue could not be written; the next payment tries again" };
  });
  let timer: NodeJS.Timeout | undefined;
  const slow = new Promise<BazaarResponse>((resolve) => (timer = setTimeout(() => resolve({ status: "processing" }), waitMs)));
  try {
    return await Promise.race([writing, slow]);
  } finally {
    clearTimeout(timer);
  }
}
