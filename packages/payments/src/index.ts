/**
 * The payments record without I/O: one compact record per payment (from settle answers and the
 * collector's outcomes), day totals per payee for /usage and the payments view, `usageMetadata`, and
 * outcome webhooks (notices, signatures, retry schedule). Stores live in `@facilitator/ledger`; routes,
 * the recorder and the webhook delivery loop in `@facilitator/server`.
 */
export * from "./types.ts";
export { parseUsageMetadata, costUnits, formatCost, UsageMetadataSchema, INVALID_USAGE_METADATA, COST_DECIMALS, USAGE_METADATA_HEADER, type UsageMetadata, type UsageParse } from "./usage-metadata.ts";
export { paymentId, outcomeOf, observedRecord, mergeRecord, normalAddress, canonicalJson, dayOf, lastDays, type SettleObservation } from "./record.ts";
export {
  contribution, counterDelta, addCounters, zeroCounters, isZero, bucketOf, countersJson, countersFrom, usageReport,
  COUNTER_NAMES, BIG_COUNTERS, type CounterName, type UsageDay, type UsageReport,
} from "./totals.ts";
export {
  parseWebhookTargets, noticeId, noticeBody, deliveriesFor, signNotice, verifyNotice, nextAttemptAt, afterAttempt,
  WEBHOOK_HEADERS, WEBHOOK_LIMITS, MAX_DELIVERIES_PER_PAYMENT, type WebhookTarget, type NoticeType, type NoticeCheck, type RetrySchedule, type AttemptResult,
} from "./webhooks.ts";
export { planWrite } from "./plan.ts";
export { isInternalAddress } from "./addresses.ts";
export { parseUsageQuery, parseRecentQuery, RECENT_LIMITS, USAGE_DEFAULT_DAYS, type Parsed } from "./query.ts";
