/** The operator endpoints' query strings (/usage, the payments view's list), read strictly: a bad one is refused with its reason. */
import { normalAddress } from "./record.ts";
import { PAYMENT_OUTCOMES, type PaymentOutcome, type RecentQuery } from "./types.ts";

export type Parsed<T> = { ok: true; query: T } | { ok: false; message: string };

export const RECENT_LIMITS = { defaultLimit: 50, maxLimit: 200 } as const;
export const USAGE_DEFAULT_DAYS = 7;

type Raw = Record<string, unknown>;

/** A single text value (a repeated parameter is refused), trimmed; undefined when absent or empty. */
function one(raw: Raw, name: string): { ok: true; value?: string } | { ok: false; message: string } {
  const v = raw[name];
  if (v === undefined) return { ok: true };
  if (typeof v !== "string") return { ok: false, message: `${name} must be given once` };
  return { ok: true, value: v.trim() || undefined };
}

function whole(raw: Raw, name: string, min: number, max: number, fallback?: number): { ok: true; value?: number } | { ok: false; message: string } {
  const v = one(raw, name);
  if (!v.ok || v.value === undefined) return v.ok ? { ok: true, value: fallback } : v;
  const n = Number(v.value);
  if (!/^\d+$/.test(v.value) || n < min || n > max) return { ok: false, message: `${name} must be a whole number from ${min} to ${max}` };
  return { ok: true, value: n };
}

/** `payTo` as the records keep it (EVM addresses in lower case). */
function payee(raw: Raw): { ok: true; value?: string } | { ok: false; message: string } {
  const v = one(raw, "payTo");
  if (!v.ok || v.value === undefined) return v;
  if (v.value.length > 128 || !/^[A-Za-z0-9:_-]+$/.test(v.value)) return { ok: false, message: "payTo must be an address (letters and digits, at most 128)" };
  return { ok: true, value: normalAddress(v.value) };
}

/** `/usage?days=N&payTo=…`: days from 1 to `maxDays` (the retention), 7 by default. */
export function parseUsageQuery(raw: Raw, maxDays: number): Parsed<{ days: number; payTo?: string }> {
  const days = whole(raw, "days", 1, maxDays, Math.min(USAGE_DEFAULT_DAYS, maxDays));
  if (!days.ok) return days;
  const p = payee(raw);
  if (!p.ok) return p;
  return { ok: true, query: { days: days.value!, ...(p.value ? { payTo: p.value } : {}) } };
}

/** The view's list: `network` (CAIP-2), `outcome`, `limit` (50, at most 200), `before` (ms, for the next page). */
export function parseRecentQuery(raw: Raw): Parsed<RecentQuery> {
  const network = one(raw, "network");
  if (!network.ok) return network;
  if (network.value && !/^[A-Za-z0-9-]{1,32}:[A-Za-z0-9-]{1,64}$/.test(network.value)) return { ok: false, message: "network must be a CAIP-2 id such as eip155:8453" };
  const outcome = one(raw, "outcome");
  if (!outcome.ok) return outcome;
  if (outcome.value && !PAYMENT_OUTCOMES.includes(outcome.value as PaymentOutcome)) return { ok: false, message: `outcome must be one of ${PAYMENT_OUTCOMES.join(", ")}` };
  const limit = whole(raw, "limit", 1, RECENT_LIMITS.maxLimit, RECENT_LIMITS.defaultLimit);
  if (!limit.ok) return limit;
  const before = whole(raw, "before", 0, Number.MAX_SAFE_INTEGER);
  if (!before.ok) return before;
  const query: RecentQuery = { limit: limit.value! };
  if (network.value) query.network = network.value;
  if (outcome.value) query.outcome = outcome.value as PaymentOutcome;
  if (before.value !== undefined) query.before = before.value;
  return { ok: true, query };
}
