/**
 * Outcome webhooks, the pure part: which receivers a payee registered (WEBHOOKS), the notice a final
 * outcome makes, its ids, the signature over the raw body, its check on the receiver's side, and the
 * retry schedule. Delivery itself (HTTP, the outbox loop) is the server's.
 *
 * A receiver gets `POST <url>` with the JSON notice and three headers:
 *   x402-webhook-id:        the notice id (the body's `id`): the same on every attempt, dedupe on it
 *   x402-webhook-timestamp: unix seconds of this attempt
 *   x402-webhook-signature: `v1=` + hex HMAC-SHA256(secret, `${timestamp}.${raw body}`)
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { normalAddress, sha256Hex } from "./record.ts";
import type { Delivery, PaymentRecord } from "./types.ts";

export const WEBHOOK_HEADERS = { id: "x402-webhook-id", timestamp: "x402-webhook-timestamp", signature: "x402-webhook-signature" } as const;

export interface WebhookTarget {
  payTo: string;
  url: string;
  secret: string;
}

export const WEBHOOK_LIMITS = { maxTargets: 1_000, minSecret: 16, maxSecret: 512, maxUrl: 2_048, maxPayTo: 128 } as const;

/** Deliveries one payment may accumulate (a payment failing again and again with new reasons stops adding notices past it). */
export const MAX_DELIVERIES_PER_PAYMENT = 32;

/**
 * WEBHOOKS: a JSON array of `{payTo, url, secret}`. Problems name the entry, never its URL (it may hold a
 * token) or its secret. `allowedHosts`, when not empty, is the only hosts a URL may name.
 */
export function parseWebhookTargets(raw: string | undefined, allowedHosts: readonly string[] = []): { targets: WebhookTarget[]; problems: string[] } {
  if (!raw?.trim()) return { targets: [], problems: [] };
  const shape = "must be a JSON array of {payTo, url, secret}";
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return { targets: [], problems: [`${shape} (not valid JSON)`] };
  }
  if (!Array.isArray(parsed)) return { targets: [], problems: [`${shape}, got ${parsed === null ? "null" : typeof parsed}`] };
  if (parsed.length > WEBHOOK_LIMITS.maxTargets) return { targets: [], problems: [`at most ${WEBHOOK_LIMITS.maxTargets} receivers, got ${parsed.length}`] };
  const targets: WebhookTarget[] = [];
  const problems: string[] = [];
  const seen = new Set<string>();
  parsed.forEach((entry: unknown, i) => {
    const problem = targetProblem(entry, allowedHosts);
    if (problem) return void problems.push(`entry #${i + 1} ${problem}`);
    const t = entry as WebhookTarget;
    const target = { payTo: normalAddress(t.payTo), url: t.url, secret: t.secret };
    const key = `${target.payTo}\n${target.url}`;
    if (seen.has(key)) return void problems.push(`entry #${i + 1} repeats an earlier entry's payTo and url`);
    seen.add(key);
    targets.push(target);
  });
  return { targets, problems };
}

function targetProblem(entry: unknown, allowedHosts: readonly string[]): string | undefined {
  if (entry === null || typeof entry !== "object" || Array.isArray(entry)) return "is not an object";
  const { payTo, url, secret } = entry as Record<string, unknown>;
  if (typeof payTo !== "string" || !payTo || payTo.length > WEBHOOK_LIMITS.maxPayTo) return `has no payTo (a payee address of at most ${WEBHOOK_LIMITS.maxPayTo} characters)`;
  if (typeof secret !== "string" || secret.length < WEBHOOK_LIMITS.minSecret || secret.length > WEBHOOK_LIMITS.maxSecret) {
    return `needs a secret of ${WEBHOOK_LIMITS.minSecret} to ${WEBHOOK_LIMITS.maxSecret} characters (value not shown)`;
  }
  if (typeof url !== "string" || url.length > WEBHOOK_LIMITS.maxUrl || !URL.canParse(url)) return "has a url that is not a URL (value not shown)";
  const u = new URL(url);
  if (u.protocol !== "http:" && u.protocol !== "https:") return "has a url that is not http(s) (value not shown)";
  if (u.username || u.password) return "has a url with credentials; put them in the secret instead (value not shown)";
  if (allowedHosts.length && !allowedHosts.includes(u.hostname.toLowerCase())) return `has a url whose host is not in WEBHOOK_ALLOWED_HOSTS (${allowedHosts.join(", ")})`;
  return undefined;
}

export type NoticeType = "payment.succeeded" | "payment.failed";

/** The id a receiver dedupes on: one per payment and final outcome (a failed payment retried into success gets a second notice). */
export function noticeId(r: Pick<PaymentRecord, "id" | "outcome" | "transaction" | "reason">): string {
  return sha256Hex(["x402-notice/1", r.id, r.outcome, r.transaction ?? "", r.reason ?? ""].join("\n"));
}

/** The notice body of a record's final outcome; undefined while the outcome is not final. */
export function noticeBody(r: PaymentRecord, now: number): { id: string; body: string } | undefined {
  if (r.outcome !== "success" && r.outcome !== "failed") return undefined;
  const id = noticeId(r);
  const notice = {
    id,
    type: (r.outcome === "success" ? "payment.succeeded" : "payment.failed") satisfies NoticeType,
    createdAt: new Date(now).toISOString(),
    payment: {
      id: r.id,
      network: r.network,
      scheme: r.scheme,
      payer: r.payer,
      payTo: r.payTo,
      amount: r.amount,
      asset: r.asset,
      transaction: r.transaction,
      outcome: r.outcome,
      reason: r.reason,
      collected: r.collected ?? false,
      firstSeenAt: new Date(r.time).toISOString(),
      latencyMs: r.latencyMs,
      usageMetadata: r.usage,
      inferenceRecordId: r.inferenceRecordId,
    },
  };
  return { id, body: JSON.stringify(notice) };
}

/** The outbox deliveries a record's final outcome makes for its payee's receivers, skipping those already made. */
export function deliveriesFor(r: PaymentRecord, targets: readonly WebhookTarget[], now: number): Delivery[] {
  const notice = noticeBody(r, now);
  if (!notice) return [];
  const made = new Set(r.deliveries ?? []);
  const room = MAX_DELIVERIES_PER_PAYMENT - made.size;
  return targets
    .filter((t) => t.payTo === r.payTo)
    .map((t) => ({ t, id: sha256Hex(`x402-delivery/1\n${notice.id}\n${t.url}`) }))
    .filter(({ id }) => !made.has(id))
    .slice(0, Math.max(0, room))
    .map(({ t, id }) => ({ id, noticeId: notice.id, paymentId: r.id, payTo: r.payTo, url: t.url, body: notice.body, state: "pending", attempts: 0, nextAt: now, createdAt: now }));
}

/** `v1=<hex>`: HMAC-SHA256 of `${timestamp}.${body}` under the receiver's secret. */
export function signNotice(secret: string, timestamp: number, body: string): string {
  return `v1=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`;
}

export type NoticeCheck = { ok: true } | { ok: false; reason: "signature_missing" | "timestamp_invalid" | "timestamp_out_of_tolerance" | "signature_mismatch" };

/**
 * What a receiver runs on each notice, before parsing the body: the signature over the raw bytes, and a
 * timestamp within `toleranceSeconds` of its clock (so a captured notice cannot be replayed later).
 * The signature header may list several `v1=` values (comma separated) while a secret is rotated.
 */
export function verifyNotice(o: { secret: string; body: string; timestamp: string | undefined; signature: string | undefined; nowSeconds: number; toleranceSeconds?: number }): NoticeCheck {
  if (!o.signature) return { ok: false, reason: "signature_missing" };
  if (!o.timestamp || !/^\d{1,12}$/.test(o.timestamp)) return { ok: false, reason: "timestamp_invalid" };
  if (Math.abs(o.nowSeconds - Number(o.timestamp)) > (o.toleranceSeconds ?? 300)) return { ok: false, reason: "timestamp_out_of_tolerance" };
  const expected = Buffer.from(signNotice(o.secret, Number(o.timestamp), o.body));
  const match = o.signature.split(",").some((s) => {
    const given = Buffer.from(s.trim());
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  return match ? { ok: true } : { ok: false, reason: "signature_mismatch" };
}

export interface RetrySchedule {
  baseMs: number;
  maxMs: number;
  maxAttempts: number;
}

/** When attempt `attempts + 1` is due after `attempts` failed ones: base, 2x, 4x, ... up to maxMs; undefined once maxAttempts were made. */
export function nextAttemptAt(attempts: number, now: number, s: RetrySchedule): number | undefined {
  if (attempts >= s.maxAttempts) return undefined;
  return now + Math.min(s.maxMs, s.baseMs * 2 ** Math.max(0, attempts - 1));
}

/** What one attempt to deliver a notice came to. */
export type AttemptResult = { ok: true; status: number } | { ok: false; status?: number; error: string };

/** The delivery after an attempt: delivered, due again later, or given up after the last attempt the schedule allows. */
export function afterAttempt(d: Delivery, result: AttemptResult, now: number, s: RetrySchedule): Delivery {
  const attempts = d.attempts + 1;
  const { lastStatus: _s, lastError: _e, ...rest } = d;
  const base: Delivery = { ...rest, attempts, lastAttemptAt: now, ...(result.status !== undefined ? { lastStatus: result.status } : {}) };
  if (result.ok) return { ...base, state: "delivered", deliveredAt: now, nextAt: now };
  const failed = { ...base, lastError: result.error.slice(0, 200) };
  const next = nextAttemptAt(attempts, now, s);
  return next === undefined ? { ...failed, state: "failed", nextAt: now } : { ...failed, state: "pending", nextAt: next };
}
