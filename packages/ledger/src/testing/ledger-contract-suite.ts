/**
 * The contract every SettlementLedger keeps, as one vitest suite that takes a factory, so each
 * implementation runs the very same checks. Imported by tests only (it imports vitest), as
 * `@facilitator/ledger/testing`.
 */
import { afterAll, describe, expect, it } from "vitest";
import type { LedgerEntry, SettlementLedger } from "@facilitator/core";

export interface LedgerHarness {
  /** A fresh, empty ledger. */
  create(): Promise<SettlementLedger>;
  /** A second handle onto the store behind `ledger` (another connection / environment handle). */
  another(ledger: SettlementLedger): Promise<SettlementLedger>;
  /** Closes `ledger` and everything under it goes through a restart; returns a handle onto the same data. */
  reopen(ledger: SettlementLedger): Promise<SettlementLedger>;
  /** Extra restart flavours (e.g. a SIGKILL of the server) under their own names. */
  crashes?: Record<string, (ledger: SettlementLedger) => Promise<SettlementLedger>>;
  /** A fresh ledger that keeps finished entries `retentionMs`, its clock, and a way to let time pass for it. */
  createWithRetention(retentionMs: number): Promise<{ ledger: SettlementLedger; now(): number; elapse(ms: number): Promise<void> }>;
  cleanup(): Promise<void>;
}

let counter = 0;
const uniqueKey = () => `evm:84532:0xasset:0xpayer:0x${(++counter).toString(16).padStart(64, "0")}-${Math.random()}`;

const claim = (key: string, over: Partial<LedgerEntry> = {}): Omit<LedgerEntry, "version"> => ({
  key,
  state: "claimed",
  network: "eip155:84532",
  payer: "0x00000000000000000000000000000000000000aa",
  amount: "1000",
  leaseUntil: Date.now() + 60_000,
  updatedAt: Date.now(),
  ...over,
});

export function describeLedgerContract(name: string, harness: LedgerHarness): void {
  describe(`SettlementLedger contract: ${name}`, () => {
    const opened: SettlementLedger[] = [];
    const fresh = async () => {
      const l = await harness.create();
      opened.push(l);
      return l;
    };
    afterAll(async () => {
      for (const l of opened) await l.close().catch(() => undefined);
      await harness.cleanup();
    });

    it("creates only from version 0 and then moves one version at a time", async () => {
      const ledger = await fresh();
      const key = uniqueKey();
      expect(await ledger.get(key)).toBeUndefined();
      expect(await ledger.compareAndSet(claim(key), 3)).toBeUndefined();
      const first = await ledger.compareAndSet(claim(key), 0);
      expect(first?.version).toBe(1);
      expect(await ledger.compareAndSet(claim(key), 0)).toBeUndefined();
      const second = await ledger.compareAndSet(claim(key, { state: "broadcast", transaction: "0xabc", rawTransaction: "0x02f8" }), 1);
      expect(second?.version).toBe(2);
      expect(await ledger.compareAndSet(claim(key, { state: "success" }), 1)).toBeUndefined();
      const stored = await ledger.get(key);
      expect(stored).toMatchObject({ key, state: "broadcast", version: 2, transaction: "0xabc", rawTransaction: "0x02f8", payer: claim(key).payer });
    });

    it("stores exactly the fields written, without undefined ones", async () => {
      const ledger = await fresh();
      const key = uniqueKey();
      const written = claim(key, { pendingAnswered: true, reason: "settlement_pending", message: "m", transaction: undefined });
      await ledger.compareAndSet(written, 0);
      const { transaction: _omitted, ...expected } = written;
      expect(await ledger.get(key)).toEqual({ ...expected, version: 1 });
    });

    it("lets exactly one of many concurrent writers win each version, across handles", async () => {
      const a = await fresh();
      const b = await harness.another(a);
      opened.push(b);
      const key = uniqueKey();
      const create = await Promise.all(
        Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).compareAndSet(claim(key, { message: `writer ${i}` }), 0)),
      );
      const winners = create.filter(Boolean);
      expect(winners).toHaveLength(1);
      expect((await a.get(key))?.message).toBe(winners[0]!.message);
      const move = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 ? b : a).compareAndSet(claim(key, { state: "broadcast", message: `mover ${i}` }), 1)),
      );
      expect(move.filter(Boolean)).toHaveLength(1);
      expect((await b.get(key))?.version).toBe(2);
    });

    it("lets exactly one of many concurrent writers of identical entries win", async () => {
      const a = await fresh();
      const b = await harness.another(a);
      opened.push(b);
      const key = uniqueKey();
      const same = claim(key, { updatedAt: 1, leaseUntil: 2 });
      const results = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b).compareAndSet(same, 0)));
      expect(results.filter(Boolean)).toHaveLength(1);
      const moved = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? b : a).compareAndSet({ ...same, state: "broadcast" }, 1)));
      expect(moved.filter(Boolean)).toHaveLength(1);
    });

    it("releases only a claimed entry at the expected version", async () => {
      const ledger = await fresh();
      const key = uniqueKey();
      await ledger.compareAndSet(claim(key), 0);
      expect(await ledger.release(key, 2)).toBe(false);
      expect(await ledger.release(key, 1)).toBe(true);
      expect(await ledger.get(key)).toBeUndefined();
      expect(await ledger.release(key, 1)).toBe(false);
      // released means absent: a new claim starts again from version 0
      expect((await ledger.compareAndSet(claim(key), 0))?.version).toBe(1);

      const sent = uniqueKey();
      await ledger.compareAndSet(claim(sent), 0);
      await ledger.compareAndSet(claim(sent, { state: "broadcast", transaction: "0x01" }), 1);
      expect(await ledger.release(sent, 2)).toBe(false);
      expect((await ledger.get(sent))?.state).toBe("broadcast");
    });

    it("counts entries in broadcast state", async () => {
      const ledger = await fresh();
      const before = await ledger.countUnconfirmed();
      const [k1, k2, k3] = [uniqueKey(), uniqueKey(), uniqueKey()];
      for (const k of [k1, k2, k3]) await ledger.compareAndSet(claim(k), 0);
      await ledger.compareAndSet(claim(k1, { state: "broadcast", transaction: "0x1" }), 1);
      await ledger.compareAndSet(claim(k2, { state: "broadcast", transaction: "0x2" }), 1);
      expect(await ledger.countUnconfirmed()).toBe(before + 2);
      await ledger.compareAndSet(claim(k1, { state: "broadcast", transaction: "0x1", pendingAnswered: true }), 2);
      expect(await ledger.countUnconfirmed()).toBe(before + 2);
      await ledger.compareAndSet(claim(k1, { state: "success", transaction: "0x1" }), 3);
      await ledger.compareAndSet(claim(k2, { state: "failed", transaction: "0x2", reason: "invalid_exact_evm_transaction_failed" }), 2);
      expect(await ledger.countUnconfirmed()).toBe(before);
    });

    it("lists entries in broadcast state, whole, up to a limit", async () => {
      const ledger = await fresh();
      const [k1, k2, k3] = [uniqueKey(), uniqueKey(), uniqueKey()];
      for (const k of [k1, k2, k3]) await ledger.compareAndSet(claim(k), 0);
      await ledger.compareAndSet(claim(k1, { state: "broadcast", transaction: "0x1", rawTransaction: "0x02aa" }), 1);
      await ledger.compareAndSet(claim(k2, { state: "broadcast", transaction: "0x2" }), 1);
      const listed = async () => new Map((await ledger.listUnconfirmed(10_000)).map((e) => [e.key, e]));
      const all = await listed();
      expect(all.get(k1)).toMatchObject({ state: "broadcast", version: 2, transaction: "0x1", rawTransaction: "0x02aa" });
      expect(all.has(k2)).toBe(true);
      expect(all.has(k3)).toBe(false); // claimed: nothing was sent
      expect(await ledger.listUnconfirmed(1)).toHaveLength(1);
      await ledger.compareAndSet(claim(k1, { state: "success", transaction: "0x1" }), 2);
      expect((await listed()).has(k1)).toBe(false);
    });

    it("forgets success, failed and unrenewed claimed entries after the retention, never broadcast ones", async () => {
      const retentionMs = 1_500;
      const { ledger, now, elapse } = await harness.createWithRetention(retentionMs);
      opened.push(ledger);
      const [settled, failed, claimed, sent, retried, permit] = Array.from({ length: 6 }, uniqueKey);
      for (const k of [settled, failed, claimed, sent, retried, permit]) await ledger.compareAndSet(claim(k!), 0);
      await ledger.compareAndSet(claim(settled!, { state: "success", transaction: "0x1" }), 1);
      expect((await ledger.get(settled!))?.state).toBe("success"); // kept within the retention
      await ledger.compareAndSet(claim(failed!, { state: "failed", reason: "invalid_exact_evm_transaction_failed" }), 1);
      await ledger.compareAndSet(claim(sent!, { state: "broadcast", transaction: "0x2", rawTransaction: "0x02" }), 1);
      // a failure tried again: claimed once more, by a holder that will go on renewing it
      await ledger.compareAndSet(claim(retried!, { state: "failed", reason: "unexpected_settle_error" }), 1);
      await ledger.compareAndSet(claim(retried!), 2);
      // a permit whose deadline is far off: kept past the retention
      await ledger.compareAndSet(claim(permit!, { state: "success", transaction: "0x3", keepUntil: now() + 3_600_000 }), 1);
      const unconfirmed = await ledger.countUnconfirmed();

      await elapse(retentionMs / 2);
      await ledger.compareAndSet(claim(retried!), 3); // a lease renewal: the retention starts again
      await elapse(retentionMs * 0.67); // settled ones are past it, the renewed claim well within
      await ledger.compareAndSet(claim(uniqueKey()), 0); // a store without expiry of its own sweeps on writes
      await ledger.compareAndSet(claim(uniqueKey()), 0);

      expect(await ledger.get(settled!)).toBeUndefined();
      expect(await ledger.get(failed!)).toBeUndefined();
      expect(await ledger.get(claimed!)).toBeUndefined(); // its holder stopped renewing: nothing was sent
      expect(await ledger.get(sent!)).toMatchObject({ state: "broadcast", version: 2, rawTransaction: "0x02" });
      expect(await ledger.get(retried!)).toMatchObject({ state: "claimed", version: 4 });
      expect(await ledger.get(permit!)).toMatchObject({ state: "success", version: 2 });
      expect(await ledger.countUnconfirmed()).toBe(unconfirmed);
      // forgotten means absent: the payment's key starts again from version 0
      expect((await ledger.compareAndSet(claim(settled!), 0))?.version).toBe(1);
    });

    const restarts: Record<string, (l: SettlementLedger) => Promise<SettlementLedger>> = {
      "close and reopen": (l) => harness.reopen(l),
      ...harness.crashes,
    };
    for (const [label, restart] of Object.entries(restarts)) {
      it(`keeps every acknowledged write across ${label}`, async () => {
        const ledger = await fresh();
        const keys = Array.from({ length: 5 }, uniqueKey);
        for (const k of keys) await ledger.compareAndSet(claim(k), 0);
        await ledger.compareAndSet(claim(keys[0]!, { state: "broadcast", transaction: "0xfeed", rawTransaction: "0x02ab" }), 1);
        await ledger.compareAndSet(claim(keys[1]!, { state: "success", transaction: "0xbeef" }), 1);
        const unconfirmed = await ledger.countUnconfirmed();
        const after = await restart(ledger);
        opened.push(after);
        expect(await after.get(keys[0]!)).toMatchObject({ state: "broadcast", version: 2, transaction: "0xfeed", rawTransaction: "0x02ab" });
        expect(await after.get(keys[1]!)).toMatchObject({ state: "success", version: 2, transaction: "0xbeef" });
        for (const k of keys.slice(2)) expect((await after.get(k))?.state).toBe("claimed");
        expect(await after.countUnconfirmed()).toBe(unconfirmed);
        // and it goes on working: the CAS still sees the persisted version
        expect(await after.compareAndSet(claim(keys[0]!, { state: "success" }), 1)).toBeUndefined();
        expect((await after.compareAndSet(claim(keys[0]!, { state: "success" }), 2))?.version).toBe(3);
      });
    }
  });
}
