import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Reason, type SettlementLedger } from "@facilitator/core";
import { startRedis, type RedisServer } from "@facilitator/devnet";
import { RedisLedger } from "@facilitator/ledger";
import type { Hash, Hex } from "viem";
import { createEvmExactMechanism } from "./mechanism.ts";
import { startTestChain, tempLedger, type TempLedger, type TestChain } from "./testing/index.ts";

let chain: TestChain;
let redis: RedisServer;
let lmdb: TempLedger;
const ledgers: Record<string, () => SettlementLedger> = {};
const opened: SettlementLedger[] = [];

beforeAll(async () => {
  [chain, redis] = await Promise.all([startTestChain(), startRedis()]);
  lmdb = tempLedger();
  ledgers.lmdb = () => lmdb.ledger;
  ledgers.redis = () => {
    const l = new RedisLedger({ redis: redis.url, prefix: `t${opened.length}:` });
    opened.push(l);
    return l;
  };
});

afterAll(async () => {
  for (const l of opened) await l.close();
  await lmdb?.dispose();
  await redis?.stop();
  await chain?.stop();
});

const mechanismWith = (ledger: SettlementLedger) =>
  createEvmExactMechanism({ networks: [chain.network], signers: [chain.facilitatorKey], ledger, receiptTimeoutMs: 20_000, pollingIntervalMs: 25 });

describe.each(["redis", "lmdb"])("concurrent settles (%s ledger)", (kind) => {
  it("settles 50 distinct payments at once through one signer: all succeed with distinct nonces", async () => {
    const mechanism = mechanismWith(ledgers[kind]!());
    const requests = await Promise.all(Array.from({ length: 50 }, (_, i) => chain.pay({ value: 1000n + BigInt(i) })));
    const total = requests.reduce((sum, r) => sum + r.requirements.amount, 0n);
    const payToBefore = await chain.balanceOf(chain.payTo);
    const minedBefore = await chain.minedCount();

    const outcomes = await Promise.all(requests.map((r) => mechanism.settle(r)));
    const failures = outcomes.filter((o) => !o.success);
    expect(failures).toEqual([]);
    const hashes = outcomes.map((o) => o.transaction as Hash);
    expect(new Set(hashes).size).toBe(50);

    const txs = await Promise.all(hashes.map((hash) => chain.client.getTransaction({ hash })));
    const nonces = txs.map((t) => t.nonce).sort((a, b) => a - b);
    expect(nonces).toEqual(Array.from({ length: 50 }, (_, i) => minedBefore + i));
    expect(await chain.balanceOf(chain.payTo)).toBe(payToBefore + total);
    for (const r of requests) {
      const a = (r.payload as { authorization: { nonce: Hex } }).authorization;
      expect(await chain.nonceUsed(chain.payer.address, a.nonce)).toBe(true);
    }
  });

  it("settles 20 concurrent copies of one payment exactly once: one success, 19 duplicate_settlement", async () => {
    // Several mechanism instances on one ledger stand for several API processes.
    const ledger = ledgers[kind]!();
    const mechanisms = [mechanismWith(ledger), mechanismWith(ledger), mechanismWith(ledger)];
    const request = await chain.pay({ value: 777n });
    const payToBefore = await chain.balanceOf(chain.payTo);
    const minedBefore = await chain.minedCount();

    const outcomes = await Promise.all(Array.from({ length: 20 }, (_, i) => mechanisms[i % 3]!.settle(request)));
    const successes = outcomes.filter((o) => o.success);
    expect(successes).toHaveLength(1);
    const others = outcomes.filter((o) => !o.success);
    expect(others.map((o) => (o as { reason: string }).reason)).toEqual(Array(19).fill(Reason.duplicateSettlement));
    expect(await chain.minedCount()).toBe(minedBefore + 1);
    expect(await chain.balanceOf(chain.payTo)).toBe(payToBefore + 777n);
  });
});
