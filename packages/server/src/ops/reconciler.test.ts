/** Collecting settlements nobody came back for: the rule, then real payments on anvil with each ledger. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NetworkRegistry, Reason, type LedgerEntry, type SettlementLedger } from "@facilitator/core";
import { startRedis, type RedisServer } from "@facilitator/devnet";
import { createEvmExactMechanism } from "@facilitator/evm";
import { startTestChain, type TestChain } from "@facilitator/evm/testkit";
import { EmbeddedLedger, RedisLedger } from "@facilitator/ledger";
import { Facilitator } from "../facilitator.ts";
import { isAbandoned, startReconciler } from "./reconciler.ts";

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
    "EmbeddedLedger",
    () => {
      const dir = mkdtempSync(join(tmpdir(), "reconcile-"));
      dirs.push(dir);
      return new EmbeddedLedger(dir);
    },
  ],
  ["RedisLedger", () => new RedisLedger({ redis: redis.url, prefix: `reconcile-${Math.random()}:` })],
];

describe.each(ledgers)("with %s", (_, openLedger) => {
  it("collects a payment answered pending that the client never came back for: one success, the same transaction, nothing sent again", async () => {
    const ledger = openLedger();
    const mechanism = createEvmExactMechanism({ networks: [chain.network], signers: [chain.facilitatorKey], ledger, receiptTimeoutMs: 500, pollingIntervalMs: 20 });
    const facilitator = new Facilitator(new NetworkRegistry([], [chain.network]), [mechanism]);
    const collected: unknown[] = [];
    const reconciler = (afterMs: number) =>
      startReconciler({ ledger, settle: (r) => facilitator.settleStored(r), afterMs, intervalMs: 60_000, onOutcome: (_, o) => collected.push(o) });
    try {
      const request = await chain.pay({ value: 3131n });
      const payToBefore = await chain.balanceOf(chain.payTo);
      await chain.rpc("evm_setAutomine", [false]);
      let hash: string;
      try {
        const first = await mechanism.settle(request);
        expect(first).toMatchObject({ success: false, reason: Reason.settlementPending });
        hash = first.transaction;
        await chain.rpc("evm_mine");
      } finally {
        await chain.rpc("evm_setAutomine", [true]);
      }
      const minedBefore = await chain.minedCount();
      const [listed] = await ledger.listUnconfirmed(10);
      expect(listed).toMatchObject({ state: "broadcast", transaction: hash, request: { networkId: request.networkId, requirements: { amount: "3131" } } });

      const patient = reconciler(120_000); // the client may still retry: leave it
      expect(await patient.runOnce()).toBe(0);
      await patient.stop();
      expect(await ledger.countUnconfirmed()).toBe(1);

      const due = reconciler(0);
      expect(await due.runOnce()).toBe(1);
      await due.stop();
      expect(collected).toEqual([{ success: true, payer: chain.payer.address, transaction: hash, amount: 3131n }]);
      const recorded = await ledger.get(listed!.key);
      expect(recorded).toMatchObject({ state: "success", transaction: hash });
      expect(recorded?.request).toBeUndefined(); // an outcome on record needs no request kept
      expect(await ledger.countUnconfirmed()).toBe(0);
      expect(await chain.minedCount()).toBe(minedBefore);
      expect(await chain.balanceOf(chain.payTo)).toBe(payToBefore + 3131n);

      // The client's late retry learns the outcome; nothing moves again.
      expect(await mechanism.settle(request)).toMatchObject({ success: false, reason: Reason.duplicateSettlement, transaction: hash });
      expect(await chain.balanceOf(chain.payTo)).toBe(payToBefore + 3131n);
    } finally {
      await ledger.close();
    }
  });
});
