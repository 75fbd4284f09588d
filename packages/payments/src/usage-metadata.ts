/**
 * `usageMetadata`, the optional field of a /settle body through which a resource server reports what the
 * payment bought (as the inference facilitator this one replaces took it): tokens in and out, model,
 * cost, session, streaming. It comes from the caller, so every field is bounded and unknown ones dropped.
 */
import { z } from "zod";

/** Reason string of a /settle refused for its usageMetadata (nothing is settled then). */
export const INVALID_USAGE_METADATA = "invalid_usage_metadata";

/** Digits of `cost` after the point that are kept exactly (sums are in units of 10^-COST_DECIMALS). */
export const COST_DECIMALS = 18;

const MAX_TOKENS = 1e12;
const DECIMAL = /^\d{1,20}(\.\d{1,18})?$/;
/** Printable text without control characters (what a view shows as it is). */
const TEXT = /^[^\p{Cc}\p{Cf}\u2028\u2029]+$/u;

const text = (what: string) =>
  z.string().min(1).max(128, `${what} is at most 128 characters`).regex(TEXT, `${what} holds control characters`);
const tokens = z.number().int().min(0).max(MAX_TOKENS);

/** The accepted shape; anything else in the object is dropped. */
export const UsageMetadataSchema = z.object({
  inputTokens: tokens.optional(),
  outputTokens: tokens.optional(),
  model: text("model").optional(),
  /** What the resource server charged for the use, as a decimal (USD in the inference facilitator), up to 18 places. */
  cost: z
    .union([z.string(), z.number().finite().nonnegative()])
    .transform((v) => (typeof v === "number" ? String(v) : v))
    .refine((v) => DECIMAL.test(v), "cost must be a non-negative decimal with at most 20 digits before the point and 18 after")
    .optional(),
  sessionId: text("sessionId").optional(),
  streaming: z.boolean().optional(),
});

export type UsageMetadata = z.infer<typeof UsageMetadataSchema>;

export type UsageParse = { ok: true; value?: UsageMetadata } | { ok: false; reason: typeof INVALID_USAGE_METADATA; message: string };

/** The header that carries usageMetadata for clients that send only the protocol's three body fields (the official ones). */
export const USAGE_METADATA_HEADER = "x-usage-metadata";
const MAX_HEADER_CHARS = 4_096;

/**
 * Reads `body.usageMetadata`, else the `x-usage-metadata` header (base64 JSON): absent is fine, a bad one
 * is refused with its reason; an empty one counts as absent.
 */
export function parseUsageMetadata(body: unknown, header?: string): UsageParse {
  let raw = body !== null && typeof body === "object" ? (body as { usageMetadata?: unknown }).usageMetadata : undefined;
  if ((raw === undefined || raw === null) && header) {
    const decoded = header.length <= MAX_HEADER_CHARS && /^[A-Za-z0-9+/_-]+={0,2}$/.test(header.trim()) ? jsonOrUndefined(Buffer.from(header.trim(), "base64").toString("utf8")) : undefined;
    if (decoded === undefined) return { ok: false, reason: INVALID_USAGE_METADATA, message: `${USAGE_METADATA_HEADER} must be base64 of a JSON object, at most ${MAX_HEADER_CHARS} characters` };
    raw = decoded;
  }
  if (raw === undefined || raw === null) return { ok: true };
  const parsed = UsageMetadataSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length ? `usageMetadata.${issue.path.join(".")}` : "usageMetadata";
    return { ok: false, reason: INVALID_USAGE_METADATA, message: `${where}: ${issue.message}` };
  }
  const value = Object.fromEntries(Object.entries(parsed.data).filter(([, v]) => v !== undefined)) as UsageMetadata;
  return { ok: true, value: Object.keys(value).length ? value : undefined };
}

/** `cost` in units of 10^-18, exactly. */
export function costUnits(cost: string | undefined): bigint {
  if (!cost || !DECIMAL.test(cost)) return 0n;
  const [whole, fraction = ""] = cost.split(".");
  return BigInt(whole!) * 10n ** BigInt(COST_DECIMALS) + BigInt(fraction.padEnd(COST_DECIMALS, "0"));
}

/** Units of 10^-18 as a decimal without trailing zeros (`1.5`, `0`). */
export function formatCost(units: bigint): string {
  const scale = 10n ** BigInt(COST_DECIMALS);
  const fraction = (units % scale).toString().padStart(COST_DECIMALS, "0").replace(/0+$/, "");
  return fraction ? `${units / scale}.${fraction}` : `${units / scale}`;
}

function jsonOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
