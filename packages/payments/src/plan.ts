/** One write of the payments record, decided from the record as stored: the rules of record.ts, totals.ts and webhooks.ts together. */
import { mergeRecord, observedRecord, type SettleObservation } from "./record.ts";
import { bucketOf, counterDelta } from "./totals.ts";
import type { PaymentRecord, WritePlan } from "./types.ts";
import { deliveriesFor, type WebhookTarget } from "./webhooks.ts";

/**
 * What storing `observation` over `current` writes: the merged record, what it adds to its day total,
 * and the webhook deliveries its final outcome makes (listed in the record, so none is made twice).
 * Undefined when nothing changes (a duplicate, or the same answer again).
 */
export function planWrite(current: PaymentRecord | undefined, observation: SettleObservation, targets: readonly WebhookTarget[]): WritePlan | undefined {
  const observed = observedRecord(observation);
  if (!observed) return undefined;
  const merged = mergeRecord(current, observed);
  if (!merged) return undefined;
  const deliveries = deliveriesFor(merged, targets, merged.updatedAt);
  const record = deliveries.length ? { ...merged, deliveries: [...(merged.deliveries ?? []), ...deliveries.map((d) => d.id)] } : merged;
  return { record, bucket: bucketOf(record), delta: counterDelta(current, record), deliveries };
}
