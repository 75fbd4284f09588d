/**
 * The contract every PaymentsStore keeps, as one vitest suite taking a factory, so the LMDB and Redis
 * stores run the very same checks. Imported by tests only, as `@facilitator/payments/testing`.
 * Time is an argument of every write; a harness with retention moves its clock (or waits, for Redis).
 */
import { afterAll, describe, expect, it } from "vitest";
import { planWrite } from "../plan.ts";
import { lastDays, type SettleObservation } from "../record.ts";
import { zeroCounters } from "../totals.ts";
import type { Counters, Delivery, PaymentsStore } from "../types.ts";
import type { WebhookTarget } from "../webhooks.ts";
import { observation, PAYEE, T0 } from "./fixtures.ts";

export { observation, stored, PAYEE, T0 } from "./fixtures.ts";

export interface PaymentsStoreHarness {
  /** A fresh, empty store keeping records `retentionMs` (30 days when not given). */
  create(retentionMs?: number): Promise<PaymentsStore>;
  /** A second handle onto the store behind `store` (another connection or environment handle). */
  another(store: PaymentsStore): Promise<PaymentsStore>;
  /** Closes `store` (and restarts what is under it, where that means something); a handle onto the same data. */
  reopen(store: PaymentsStore): Promise<PaymentsStore>;
  /** Lets `ms` pass for the store's expiry (a clock moved by hand, or real time for Redis). Returns the new time. */
  elapse(store: PaymentsStore, ms: number): Promise<void>;
  cleanup(): Promise<void>;
}

const TARGET: WebhookTarget = { payTo: PAYEE, url: "https://hooks.example/x402", secret: "s".repeat(32) };
let nonce = 0;
/** An observation of a payment of its own (a fresh nonce in its payload). */
export const another = (over: Partial<SettleObservation> = {}): SettleObservation =>
  observation({ payload: { signature: `0x${++nonce}`, authorization: { nonce: `0x${nonce}` } }, ...over });

/** Writes `o` as the facilitator does: planned from whatever the store holds. */
export const record = (store: PaymentsStore, o: SettleObservation, targets: readonly WebhookTarget[] = [TARGET]) =>
  store.write(planWrite(undefined, o, targets)!.record.id, (current) => planWrite(current, o, targets), o.now);

const counters = (over: Partial<Counters>): Counters => ({ ...zeroCounters(), ...over });

export function describePaymentsStoreContract(name: string, harness: PaymentsStoreHarness): void {
  describe(`PaymentsStore contract: ${name}`, () => {
    const opened: PaymentsStore[] = [];
    const fresh = async (retentionMs?: number) => {
      const s = await harness.create(retentionMs);
      opened.push(s);
      return s;
    };
    const handle = async (s: PaymentsStore) => {
      const h = await harness.another(s);
      opened.push(h);
      return h;
    };
    afterAll(async () => {
      for (const s of opened) await s.close().catch(() => undefined);
      await harness.cleanup();
    });
    const today = lastDays(T0, 1);

    it("stores a record whole with its day total and its deliveries, in one write", async () => {
      const store = await fresh();
      const written = await record(store, observation({ usage: { inputTokens: 3, cost: "0.25" }, inferenceRecordId: "0xrec" }));
      expect(written).toMatchObject({ outcome: "success", version: 1, amount: "1000", usage: { inputTokens: 3, cost: "0.25" }, deliveries: [expect.any(String)] });
      expect(await store.get(written!.id)).toEqual(written);
      const [bucket] = await store.totals(today);
      expect(bucket).toEqual({ day: today[0], payTo: PAYEE, network: "eip155:84532", asset: written!.asset, counters: counters({ payments: 1, success: 1, amount: 1000n, inferenceRecords: 1, usageReports: 1, inputTokens: 3, cost: 25n * 10n ** 16n }) });
      const [delivery] = await store.deliveries(written!.deliveries!);
      expect(delivery).toMatchObject({ paymentId: written!.id, payTo: PAYEE, url: TARGET.url, state: "pending", attempts: 0 });
      expect(JSON.parse(delivery!.body)).toMatchObject({ type: "payment.succeeded", payment: { id: written!.id } });
    });

    it("writes nothing when the plan says nothing changes", async () => {
      const store = await fresh();
      const o = observation();
      const first = await record(store, o);
      expect(await record(store, o)).toBeUndefined();
      expect(await store.get(first!.id)).toEqual(first);
      expect((await store.totals(today))[0]!.counters.payments).toBe(1);
    });

    it("moves a pending payment to its collected outcome: counted once, out of the pending list", async () => {
      const store = await fresh();
      const pending = another({ success: false, reason: "settlement_pending", amount: undefined });
      const p = await record(store, pending);
      expect(p).toMatchObject({ outcome: "pending" });
      expect(p!.deliveries).toBeUndefined(); // not final: no notice yet
      expect((await store.recent({ outcome: "pending", limit: 10 })).map((r) => r.id)).toEqual([p!.id]);
      const collected = await record(store, { ...pending, success: true, reason: undefined, amount: "1000", collected: true, now: T0 + 60_000 });
      expect(collected).toMatchObject({ id: p!.id, outcome: "success", collected: true, latencyMs: 60_000, version: 2, deliveries: [expect.any(String)] });
      expect(await store.recent({ outcome: "pending", limit: 10 })).toEqual([]);
      expect((await store.recent({ outcome: "success", limit: 10 })).map((r) => r.id)).toEqual([p!.id]);
      expect((await store.totals(today))[0]!.counters).toEqual(counters({ payments: 1, success: 1, amount: 1000n }));
    });

    it("lists newest first, by network and outcome, a page at a time", async () => {
      const store = await fresh();
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await record(store, another({ now: T0 + i * 1000, network: i % 2 ? "eip155:4326" : "eip155:84532" })))!.id);
      await record(store, another({ now: T0 + 9_000, success: false, reason: "insufficient_funds" }));
      expect((await store.recent({ limit: 3, outcome: "success" })).map((r) => r.id)).toEqual([ids[4], ids[3], ids[2]]);
      expect((await store.recent({ limit: 10, network: "eip155:4326" })).map((r) => r.id)).toEqual([ids[3], ids[1]]);
      expect((await store.recent({ limit: 10, network: "eip155:84532", outcome: "success", before: T0 + 4_000 })).map((r) => r.id)).toEqual([ids[2], ids[0]]);
      expect((await store.recent({ limit: 1 }))[0]).toMatchObject({ outcome: "failed", reason: "insufficient_funds" });
    });

    it("keeps totals per payee, network and asset and day, and filters by payee", async () => {
      const store = await fresh();
      await record(store, another({ amount: "10" }));
      await record(store, another({ amount: "10", payTo: "0x00000000000000000000000000000000000000dd" }));
      await record(store, another({ amount: "5", now: T0 - 86_400_000 }));
      // 2^70 units: past what a 64-bit counter holds.
      await record(store, another({ amount: (2n ** 70n).toString() }));
      const days = lastDays(T0, 2);
      const mine = await store.totals(days, PAYEE);
      expect(mine.map((b) => [b.day, b.counters.amount])).toEqual([[days[0], 5n], [days[1], 2n ** 70n + 10n]].sort());
      expect((await store.totals(days)).length).toBe(3);
      expect(await store.totals(["2001-01-01"])).toEqual([]);
    });

    it("counts a payment once when handles write it at the same time", async () => {
      const store = await fresh();
      const other = await handle(store);
      const pending = another({ success: false, reason: "settlement_pending" });
      const settled = { ...pending, success: true, reason: undefined, amount: "1000", now: T0 + 5 };
      await Promise.all([0, 1, 2, 3].flatMap((i) => [record(i % 2 ? store : other, pending), record(i % 2 ? other : store, settled)]));
      const [kept] = await store.recent({ limit: 10 });
      expect(kept).toMatchObject({ outcome: "success" });
      expect((await store.totals(today))[0]!.counters).toEqual(counters({ payments: 1, success: 1, amount: 1000n }));
      expect(kept!.deliveries).toHaveLength(1);
    });

    it("leases due deliveries, records attempts once, and keeps them across a reopen", async () => {
      let store = await fresh();
      const written = await record(store, another());
      const [claimed] = await store.claimDeliveries(T0, 10_000, 10);
      expect(claimed).toMatchObject({ id: written!.deliveries![0], attempts: 0 });
      expect(await store.claimDeliveries(T0 + 1, 10_000, 10)).toEqual([]); // leased to whoever claimed it
      const failed: Delivery = { ...claimed!, attempts: 1, lastAttemptAt: T0, lastStatus: 500, lastError: "HTTP 500", nextAt: T0 + 5_000 };
      expect(await store.finishDelivery(failed, T0)).toBe(true);
      expect(await store.finishDelivery(failed, T0)).toBe(false); // that attempt is recorded already
      store = await harness.reopen(store);
      opened.push(store);
      expect(await store.claimDeliveries(T0 + 4_999, 10_000, 10)).toEqual([]);
      const [again] = await store.claimDeliveries(T0 + 5_000, 10_000, 10);
      expect(again).toMatchObject({ attempts: 1, lastStatus: 500, body: claimed!.body });
      expect(await store.finishDelivery({ ...again!, attempts: 2, state: "delivered", lastStatus: 204, deliveredAt: T0 + 5_000 }, T0 + 5_000)).toBe(true);
      expect(await store.claimDeliveries(T0 + 60_000_000, 10_000, 10)).toEqual([]);
      expect(await store.deliveries([again!.id])).toMatchObject([{ state: "delivered", attempts: 2 }]);
      // a lease that ran out is taken by the next claim (its holder died)
      const next = await record(store, another());
      const [taken] = await store.claimDeliveries(T0, 1_000, 10);
      expect(taken!.id).toBe(next!.deliveries![0]);
      expect((await store.claimDeliveries(T0 + 1_000, 1_000, 10)).map((d) => d.id)).toEqual([taken!.id]);
    });

    it("forgets records and finished deliveries after the retention, never pending deliveries", async () => {
      const retentionMs = 1_500;
      const store = await fresh(retentionMs);
      const old = await record(store, another({ now: T0 }));
      const [d] = await store.claimDeliveries(T0, 1, 10);
      const pendingDelivery = (await record(store, another({ now: T0 })))!.deliveries![0]!;
      await store.finishDelivery({ ...d!, attempts: 1, state: "delivered", deliveredAt: T0 }, T0);
      await harness.elapse(store, retentionMs + 1_000);
      const later = T0 + retentionMs + 1_000;
      // A write is when the embedded store sweeps; Redis expires keys by itself.
      await record(store, another({ now: later, payTo: "0x00000000000000000000000000000000000000dd" }));
      await record(store, another({ now: later, payTo: "0x00000000000000000000000000000000000000dd" }));
      expect(await store.get(old!.id)).toBeUndefined();
      expect((await store.recent({ limit: 10 })).map((r) => r.payTo)).toEqual(["0x00000000000000000000000000000000000000dd", "0x00000000000000000000000000000000000000dd"]);
      expect(await store.deliveries([d!.id])).toEqual([]);
      expect(await store.deliveries([pendingDelivery])).toMatchObject([{ state: "pending" }]);
    });
  });
}
