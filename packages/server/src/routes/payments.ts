/**
 * The operator's view of payments, served from the payments record (no chain scan), behind the operator
 * key (OPERATOR_API_KEY, else METRICS_API_KEY; `Authorization: Bearer <key>` or `x-api-key`):
 *
 *   GET /usage?days=N&payTo=…                 payments, amounts, inference records and usage per payee and day
 *   GET /explorer/payments                    the page (static: it holds no data, it asks for the key)
 *   GET /explorer/payments/api/payments?network&outcome&limit&before   recent payments, newest first, with their webhook deliveries
 *   GET /explorer/payments/api/usage?days&payTo                        the same as /usage, for the page
 *
 * 401 without the key, 403 when no operator key is configured (nothing here is ever anonymous), 400
 * `invalid_query` with its reason, 503 when the record cannot be read. Everything in a record came from
 * a payer or a resource server: it is served as JSON with markup characters escaped, and the page puts
 * it in the document as text only.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { Router, type Request, type RequestHandler, type Response } from "express";
import {
  lastDays, parseRecentQuery, parseUsageQuery, usageReport,
  type Delivery, type Parsed, type PaymentRecord, type PaymentsStore,
} from "@facilitator/payments";
import { apiKeyGuard } from "../ops/auth.ts";
import { refuse } from "../ops/rejection.ts";
import { jsonQueryRoute } from "./discovery.ts";

export interface PaymentsRoutesOptions {
  store: PaymentsStore;
  /** Without it every data route answers 403. */
  operatorKey?: string;
  /** The record's retention: /usage offers at most this many days. */
  retentionDays: number;
  /** Run before every route here (a per-client rate limit). */
  guards?: RequestHandler[];
  logger?: { warn(obj: object, msg: string): void };
  now?: () => number;
}

export function paymentsRoutes(o: PaymentsRoutesOptions): Router {
  const router = Router();
  const now = o.now ?? Date.now;
  const guards = [...(o.guards ?? []), operatorOnly(o.operatorKey)];
  const page = buildPage();

  const unavailable = { reason: "payments_unavailable", message: "the payments record cannot be read right now; try again shortly", log: "the payments record could not be read" };
  const serve = <Q>(parse: (raw: Record<string, unknown>) => Parsed<Q>, run: (q: Q) => Promise<unknown>) => jsonQueryRoute(parse, run, unavailable, o.logger);
  // Nothing an operator sees here is kept by a browser or a proxy.
  router.use(["/usage", "/explorer/payments"], (_req, res, next) => {
    res.set("cache-control", "no-store");
    next();
  });

  const usage = serve(
    (raw) => parseUsageQuery(raw, o.retentionDays),
    async (q) => {
      const days = lastDays(now(), q.days);
      return usageReport(await o.store.totals(days, q.payTo), days);
    },
  );
  router.get("/usage", ...guards, usage);
  router.get("/explorer/payments/api/usage", ...guards, usage);
  router.get(
    "/explorer/payments/api/payments",
    ...guards,
    serve(parseRecentQuery, async (q) => {
      const records = await o.store.recent(q);
      const deliveries = new Map((await o.store.deliveries(records.flatMap((r) => r.deliveries ?? []))).map((d) => [d.id, d]));
      const payments = records.map((r) => viewOf(r, deliveries));
      return { payments, next: records.length === q.limit ? records[records.length - 1]!.time : undefined };
    }),
  );
  // The page is the same for everyone and holds no data: the key is asked for in it, and sent with each API call.
  router.get("/explorer/payments", ...(o.guards ?? []), (_req, res) => {
    res.set({ "content-type": "text/html; charset=utf-8", "content-security-policy": page.csp, "x-content-type-options": "nosniff", "referrer-policy": "no-referrer" });
    res.send(page.html);
  });
  return router;
}

/** The operator key, or 403 when none is configured: a view of every payment is never open to anyone. */
function operatorOnly(key: string | undefined): RequestHandler {
  if (!key) {
    return (req: Request, res: Response) =>
      refuse(req, res, 403, "operator_key_not_configured", "this endpoint needs an operator key: set OPERATOR_API_KEY (or METRICS_API_KEY) and send it as Authorization: Bearer <key>");
  }
  return apiKeyGuard([key]);
}

/** A record as the view shows it: its deliveries' state instead of their ids, a receiver by origin and path only (a query may hold a token). */
function viewOf(r: PaymentRecord, deliveries: Map<string, Delivery>) {
  const { version: _v, deliveries: ids, ...rest } = r;
  return {
    ...rest,
    webhooks: (ids ?? []).flatMap((id) => {
      const d = deliveries.get(id);
      if (!d) return [];
      const u = new URL(d.url);
      return [{ id: d.noticeId, receiver: `${u.origin}${u.pathname}`, state: d.state, attempts: d.attempts, lastStatus: d.lastStatus, lastError: d.lastError, lastAttemptAt: d.lastAttemptAt, deliveredAt: d.deliveredAt, nextAt: d.state === "pending" ? d.nextAt : undefined }];
    }),
  };
}

const asset = (name: string) => readFileSync(new URL(`./payments-assets/${name}`, import.meta.url), "utf8");

/** The page with its script inlined, and a CSP allowing exactly that script and calls to this server. */
function buildPage(): { html: string; csp: string } {
  const script = asset("payments.js");
  const html = asset("payments.html").replace("/*PAYMENTS_JS*/", () => script);
  const csp = [
    "default-src 'none'",
    `script-src 'sha256-${createHash("sha256").update(script).digest("base64")}'`,
    "style-src 'unsafe-inline'",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
  return { html, csp };
}
