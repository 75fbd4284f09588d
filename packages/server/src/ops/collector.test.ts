/** Collecting settlements nobody came back for: the rule, then real payments on anvil with each ledger. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NetworkRegistry, Reason, type LedgerEntry, type PaymentRequest, type SettlementLedger } from "@facilitator/core";
import { startRedis, type RedisServer } from "@facilitator/devnet";
import { createEvmExactMechanism, type EvmExactMechanism } from "@facilitator/evm";
import { startTestChain, type TestChain } from "@facilitator/evm/testing";
import { LmdbLedger, RedisLedger } from "@facilitator/ledger";
import { Facilitator } from "../facilitator.ts";
import { isAbandoned, startCollector } from "./collector.ts";

const NOW = 1_000_000_000;
const entry = (fields: Partial<LedgerEntry>): LedgerEntry => ({
  key: "k", state: "broadcast", version: 2, network: "eip155:84532", updatedAt: NOW - 200_000, transaction: "0x01",
  request: { x402Version: 2, scheme: "exact", networkId: "eip155:84532", payload: {}, requirements: { scheme: "exact", amount: "1", asset: "0xa", payTo: "0xb", maxTimeoutSeconds: 60, extra: {} } },
  ...fields,
});

describe("isAbandoned", () => {
  it.each<[string, Partial<LedgerEntry>, boolean]>([
    ["sent, answered pending long ago, lease given back", { pendingAnswered: true, leaseUntil: NOW - 100_000 }, true],
    ["sent by a process that died long ago", { leaseUntil: NOW - 190_000 }, true],
    ["sent and still held by a live settle", { leaseUntil: NOW + 3_000 }, false],
    ["answered pending a moment ago: the client's retry comes first", { pendingAnswered: true, leaseUntil: NOW - 1_000, updatedAt: NOW - 1_000 }, false],
    ["claimed: nothing was sent", { state: "claimed", leaseUntil: NOW - 190_000 }, false],
    ["settled", { state: "success", leaseUntil: undefined }, false],
    ["recorded before requests were kept: only a retry can collect it", { request: undefined, leaseUntil: NOW - 190_000 }, false],
  ])("%s -> %s", (_, fields, expected) => {
    expect(isAbandoned(entry(fields), NOW, 120_000)).toBe(expected);
  });
});

let chain: TestChain;
let redis: RedisServer;
const dirs: string[] = [];

beforeAll(async () => {
  [chain, redis] = await Promise.all([startTestChain(), startRedis()]);
});

afterAll(async () => {
  await Promise.all([chain?.stop(), redis?.stop()]);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const ledgers: [string, () => SettlementLedger][] = [
  [
    "LmdbLedger",
    () => {
      const dir = mkdtempSync(join(tmpdir(), "reconcile-"));
      dirs.push(dir);
      return new LmdbLedger(dir);
    },
  ],
  ["RedisLedger", () => new RedisLedger({ redis: redis.url, prefix: `reconcile-${Math.random()}:` })],
];

/** A facilitator on the test chain over `ledger`, settling with short local bounds. */
function facilitatorOn(ledger: SettlementLedger, receiptTimeoutMs = 500) {
  const mechanism = createEvmExactMechanism({ networks: [chain.network], signers: [chain.facilitatorKey], ledger, receiptTimeoutMs, pollingIntervalMs: 20 });
  return { mechanism, facilitator: new Facilitator(new NetworkRegistry([], [chain.network]), [mechanism]) };
}

/** Settles `request` while nothing is mined, so the answer is settlement_pending; then mines its transaction. Returns the hash. */
async function settledWhilePending(mechanism: EvmExactMechanism, request: PaymentRequest): Promise<string> {
  await chain.rpc("evm_setAutomine", [false]);
  try {
    const first = await mechanism.settle(request);
    expect(first).toMatchObject({ success: false, reason: Reason.settlementPending });
    await chain.rpc("evm_mine");
    return first.transaction;
  } finally {
    await chain.rpc("evm_setAutomine", [true]);
  }
}

describe.each(ledgers)("with %s", (_, openLedger) => {
  it("collects a payment answered pending that the client never came back for: one success, the same transaction, nothing sent again", async () => {
    const ledger = openLedger();
    const { mechanism, facilitator } = facilitatorOn(ledger);
    const collected: unknown[] = [];
    const collector = (afterMs: number) =>
      startCollector({ ledger, collect: (e) => facilitator.collect(e), afterMs, intervalMs: 60_000, onOutcome: (_, o) => collected.push(o) });
    try {
      const request = await chain.pay({ value: 3131n });
      const payToBefore = await chain.balanceOf(chain.payTo);
      const hash = await settledWhilePending(mechanism, request);
      const minedBefore = await chain.minedCount();
      const [listed] = await ledger.listUnconfirmed(10);
      expect(listed).toMatchObject({ state: "broadcast", transaction: hash, request: { networkId: request.networkId, requirements: { amount: "3131" } } });

      const patient = collector(120_000); // the client may still retry: leave it
      expect(await patient.runOnce()).toBe(0);
      await patient.stop();
      expect(await ledger.countUnconfirmed()).toBe(1);

      const due = collector(0);
      expect(await due.runOnce()).toBe(1);
      await due.stop();
      expect(collected).toEqual([{ success: true, payer: chain.payer.address, transaction: hash, amount: 3131n }]);
      const recorded = await ledger.get(listed!.key);
      expect(recorded).toMatchObject({ state: "success", transaction: hash, successUnanswered: true });
      expect(recorded?.request).toBeUndefined(); // an outcome on record needs no request kept
      expect(await ledger.countUnconfirmed()).toBe(0);
      expect(await chain.minedCount()).toBe(minedBefore);
      expect(await chain.balanceOf(chain.payTo)).toBe(payToBefore + 3131n);

      // Payer and nonce are public now: a request naming them with another signature does not get the success owed to the client.
      const p = request.payload as { signature: string; authorization: Record<string, string> };
      const forged = chain.request({ ...p, signature: `0x${"11".repeat(65)}` }, { amount: 3131n });
      expect(await mechanism.settle(forged)).toMatchObject({ success: false, reason: Reason.signature, transaction: "" });
      // Nobody was told yet: the client's late retry gets the one success answer, a later one the duplicate. Nothing moves again.
      expect(await ledger.get(listed!.key)).toMatchObject({ successUnanswered: true });
      const retries = await Promise.all([mechanism.settle(request), mechanism.settle(request)]);
      expect(retries.filter((r) => r.success)).toEqual([{ success: true, payer: chain.payer.address, transaction: hash, amount: 3131n }]);
      expect(retries.filter((r) => !r.success)).toEqual([expect.objectContaining({ reason: Reason.duplicateSettlement, transaction: hash })]);
      expect(await mechanism.settle(request)).toMatchObject({ success: false, reason: Reason.duplicateSettlement, transaction: hash });
      expect(await chain.balanceOf(chain.payTo)).toBe(payToBefore + 3131n);
      expect(await chain.minedCount()).toBe(minedBefore);
    } finally {
      await ledger.close();
    }
  });

  it("two processes' collectors on one ledger collect a payment once", async () => {
    const ledger = openLedger();
    const { mechanism, facilitator } = facilitatorOn(ledger);
    const outcomes: unknown[] = [];
    const start = () => startCollector({ ledger, collect: (e) => facilitator.collect(e), afterMs: 0, intervalMs: 60_000, onOutcome: (_, o) => outcomes.push(o) });
    try {
      await settledWhilePending(mechanism, await chain.pay({ value: 5151n }));
      const minedBefore = await chain.minedCount();
      const [a, b] = [start(), start()];
      const collected = await Promise.all([a.runOnce(), b.runOnce()]);
      await Promise.all([a.stop(), b.stop()]);
      expect(collected.sort()).toEqual([0, 1]);
      expect(outcomes).toEqual([expect.objectContaining({ success: true, amount: 5151n })]);
      expect(await chain.minedCount()).toBe(minedBefore);
    } finally {
      await ledger.close();
    }
  });

  it("collects nothing, and signs nothing, for a payment that is not a recorded broadcast at the version seen", async () => {
    const ledger = openLedger();
    const { mechanism } = facilitatorOn(ledger, 2_000);
    try {
      const request = await chain.pay({ value: 77n });
      const minedBefore = await chain.minedCount();
      expect(await mechanism.collect(request, 0)).toBeUndefined(); // never settled: collecting is not settling
      const settled = await mechanism.settle(request);
      expect(settled).toMatchObject({ success: true });
      expect(await ledger.listUnconfirmed(10)).toEqual([]);
      expect(await mechanism.collect(request, 3)).toBeUndefined(); // settled: nothing to collect
      expect(await chain.minedCount()).toBe(minedBefore + 1);

      const other = await chain.pay({ value: 78n });
      await settledWhilePending(mechanism, other);
      const [pending] = await ledger.listUnconfirmed(10);
      expect(await mechanism.collect(other, pending!.version + 1)).toBeUndefined(); // moved on since it was read
      expect(await ledger.get(pending!.key)).toMatchObject({ version: pending!.version, state: "broadcast" });
      expect(await mechanism.collect(other, pending!.version)).toMatchObject({ success: true, transaction: pending!.transaction });
      expect(await chain.minedCount()).toBe(minedBefore + 2);
    } finally {
      await ledger.close();
    }
  });
});

describe("a collector round", () => {
  it("goes on past an entry it cannot collect, and past one whose collection throws", async () => {
    const dir = mkdtempSync(join(tmpdir(), "reconcile-round-"));
    dirs.push(dir);
    const ledger = new LmdbLedger(dir);
    try {
      const keys = ["a", "b", "c"];
      for (const key of keys) {
        const { version: _v, ...fresh } = entry({ key, state: "claimed", updatedAt: Date.now() - 10_000 });
        const claimed = await ledger.compareAndSet(fresh, 0);
        await ledger.compareAndSet({ ...fresh, state: "broadcast", leaseUntil: Date.now() - 10_000 }, claimed!.version);
      }
      const errors: unknown[] = [];
      const collector = startCollector({
        ledger,
        afterMs: 0,
        intervalMs: 60_000,
        async collect(e) {
          if (e.key === "a") throw new Error("node unreachable");
          if (e.key === "b") return undefined; // e.g. a network this process does not serve
          return { success: true, payer: "0xpayer", transaction: e.transaction!, amount: 1n };
        },
        onError: (error) => errors.push(error),
      });
      expect(await collector.runOnce()).toBe(1);
      expect(errors).toEqual([new Error("node unreachable")]);
      await collector.stop();
    } finally {
      await ledger.close();
    }
  });

  it("goes round every unconfirmed entry of an ordered store, a page per round", async () => {
    const dir = mkdtempSync(join(tmpdir(), "reconcile-pages-"));
    dirs.push(dir);
    const ledger = new LmdbLedger(dir);
    try {
      const keys = ["k1", "k2", "k3", "k4", "k5"];
      for (const key of keys) {
        const { version: _v, ...fresh } = entry({ key, state: "claimed" });
        const claimed = await ledger.compareAndSet(fresh, 0);
        await ledger.compareAndSet({ ...fresh, state: "broadcast", leaseUntil: Date.now() + 60_000 }, claimed!.version); // held: nothing to collect
      }
      const seen: string[] = [];
      const collector = startCollector({ ledger, afterMs: 0, intervalMs: 60_000, perRound: 2, collect: async () => undefined });
      const spy = ledger.get.bind(ledger);
      ledger.get = async (key: string) => {
        seen.push(key);
        return spy(key);
      };
      for (let i = 0; i < 3; i++) await collector.runOnce();
      expect(seen).toEqual(keys);
      await collector.runOnce(); // and round again
      expect(seen.slice(5)).toEqual(["k1", "k2"]);
      await collector.stop();
    } finally {
      await ledger.close();
    }
  });
});
