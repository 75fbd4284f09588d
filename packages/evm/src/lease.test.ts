/**
 * Leases between settles of two processes on one Redis ledger (two mechanisms with their own keys
 * stand in for two API processes): a live settle keeps its payment however long its receipt takes,
 * and one taken over after it stalled past its lease writes nothing that conflicts.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Reason, type LedgerEntry, type SettleOutcome } from "@facilitator/core";
import { devKey, DevRole, startRedis, waitFor, type RedisServer } from "@facilitator/devnet";
import { RedisLedger } from "@facilitator/ledger";
import { getAddress, type Hash, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { createEvmExactMechanism, type EvmExactMechanismOptions } from "./mechanism.ts";
import { startTestChain, type TestChain } from "./testing/index.ts";

const LEASE_MS = 1_500;
const OTHER_KEY = devKey(DevRole.facilitator2);
const OTHER = privateKeyToAccount(OTHER_KEY).address;

let chain: TestChain;
let redis: RedisServer;
const ledgers: RedisLedger[] = [];

beforeAll(async () => {
  [chain, redis] = await Promise.all([startTestChain(), startRedis()]);
});
afterAll(async () => {
  await chain?.rpc("evm_setAutomine", [true]).catch(() => undefined);
  for (const l of ledgers) await l.close();
  await redis?.stop();
  await chain?.stop();
});

/** One "process": its own Redis connection and signer key. */
function process(key: Hex, over: Partial<EvmExactMechanismOptions> = {}) {
  const ledger = new RedisLedger({ redis: redis.url, prefix: "lease:" });
  ledgers.push(ledger);
  return createEvmExactMechanism({ networks: [chain.network], signers: [key], ledger, leaseMs: LEASE_MS, receiptTimeoutMs: 20_000, pollingIntervalMs: 25, ...over });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


describe("settlement leases across processes", () => {
  it("a settle waiting for its receipt keeps the payment for many leases: a retry elsewhere is a duplicate, never a takeover", async () => {
    const a = process(chain.facilitatorKey);
    const b = process(OTHER_KEY, { receiptTimeoutMs: 1_000 });
    const view = new RedisLedger({ redis: redis.url, prefix: "lease:" });
    ledgers.push(view);
    const request = await chain.pay({ value: 501n });
    const key = chain.ledgerKey(request);
    const [payToBefore, otherNonceBefore] = [await chain.balanceOf(chain.payTo), await chain.minedCount(OTHER)];

    await chain.rpc("evm_setAutomine", [false]);
    const settling = a.settle(request);
    const sent = await waitFor(async () => ((await view.get(key))?.state === "broadcast" ? view.get(key) : undefined), "the broadcast to be recorded");

    // Retries on the other process for about three leases: the holder keeps renewing meanwhile.
    const retries: SettleOutcome[] = [];
    let latest: LedgerEntry = sent!;
    const deadline = Date.now() + 20 * LEASE_MS;
    while (latest.version < sent!.version + 6 && Date.now() < deadline) {
      retries.push(await b.settle(request));
      latest = (await view.get(key))!;
      await sleep(50);
    }
    // Six renewals by the holder, of the very same record.
    expect(latest.version).toBeGreaterThanOrEqual(sent!.version + 6);
    expect(latest).toMatchObject({ state: "broadcast", transaction: sent!.transaction, rawTransaction: sent!.rawTransaction });
    await chain.rpc("evm_setAutomine", [true]);
    await chain.rpc("evm_mine");
    const outcome = await settling;

    expect(outcome).toEqual({ success: true, payer: chain.payer.address, transaction: sent!.transaction, amount: 501n });
    for (const r of retries) {
      expect(r).toMatchObject({ success: false, reason: Reason.duplicateSettlement, transaction: sent!.transaction });
      expect((r as { message: string }).message).toMatch(/settling this payment right now/);
    }
    expect(await b.settle(request)).toMatchObject({ success: false, reason: Reason.duplicateSettlement, transaction: sent!.transaction });
    expect(await chain.balanceOf(chain.payTo)).toBe(payToBefore + 501n);
    expect(await chain.minedCount(OTHER)).toBe(otherNonceBefore); // the other process sent nothing
  });

  it("a settle that stalled past its lease is taken over: both wait on its one transaction, one success, nothing re-signed", async () => {
    const a = process(chain.facilitatorKey);
    // Seen from a process whose clock is two leases ahead, the holder's lease has run out: exactly what
    // the other process sees when the holder's event loop or ledger connection stalls that long.
    const b = process(OTHER_KEY, { now: () => Date.now() + 2 * LEASE_MS });
    const view = new RedisLedger({ redis: redis.url, prefix: "lease:" });
    ledgers.push(view);
    const request = await chain.pay({ value: 502n });
    const key = chain.ledgerKey(request);
    const [payToBefore, minedBefore, otherNonceBefore] = [await chain.balanceOf(chain.payTo), await chain.minedCount(), await chain.minedCount(OTHER)];

    await chain.rpc("evm_setAutomine", [false]);
    const holding = a.settle(request);
    const sent = await waitFor(async () => ((await view.get(key))?.state === "broadcast" ? view.get(key) : undefined), "the broadcast to be recorded");
    // Its first try can lose the compare-and-set to a renewal that got in just before: it then tries again.
    const taking = (async () => {
      for (;;) {
        const r = await b.settle(request);
        if (r.success || !/settling this payment right now/.test(r.message)) return r;
      }
    })();
    // The takeover is in the ledger (a new version of the same recorded transaction), then the block comes.
    await waitFor(async () => {
      const now = await view.get(key);
      return now && now.version > sent!.version && now.leaseUntil! > Date.now() + LEASE_MS ? now : undefined;
    }, "the other process to take the payment over");
    await chain.rpc("evm_setAutomine", [true]);
    await chain.rpc("evm_mine");
    const [held, taken] = await Promise.all([holding, taking]);

    const hash = sent!.transaction as Hash;
    expect(taken).toEqual({ success: true, payer: chain.payer.address, transaction: hash, amount: 502n });
    // The stalled holder does not know the outcome the other records: pending, so its caller's retry reads it.
    expect(held).toMatchObject({ success: false, reason: Reason.settlementPending, transaction: hash });
    expect(getAddress((await chain.client.getTransaction({ hash })).from)).toBe(chain.facilitator);
    expect(await view.get(key)).toMatchObject({ state: "success", transaction: hash });
    expect(await chain.balanceOf(chain.payTo)).toBe(payToBefore + 502n);
    expect(await chain.minedCount()).toBe(minedBefore + 1);
    expect(await chain.minedCount(OTHER)).toBe(otherNonceBefore);
  });
});
