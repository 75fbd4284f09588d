/**
 * How late settle-lease renewals run under settle load, next to the lease they must stay inside:
 *
 *   pnpm exec tsx bench/tools/lease-renewals.ts [settles=600] [concurrency=200] [blockSeconds=4]
 *
 * One EVM mechanism on the Redis ledger (default 5 s lease, renewed every third of it) settles
 * `settles` payments, `concurrency` at a time, on an anvil that mines a block every `blockSeconds`, so
 * every settle waits for its receipt and renews while it waits. Reported: the event loop's delay, and
 * the longest time any payment's ledger entry went without a write of its holder while held; a holder
 * loses its lease only if that gap exceeds the lease (and another settle of the same payment comes in).
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { DEFAULT_LEASE_MS, type LedgerEntry, type PaymentRequest, type SettlementLedger } from "@facilitator/core";
import { startRedis } from "@facilitator/devnet";
import { RedisLedger } from "@facilitator/ledger";
import { createEvmExactMechanism } from "../../packages/evm/src/mechanism.ts";
import { startTestChain } from "../../packages/evm/src/testing/index.ts";

const [settles, concurrency, blockSeconds] = [Number(process.argv[2] ?? 600), Number(process.argv[3] ?? 200), Number(process.argv[4] ?? 4)];

const [chain, redis] = await Promise.all([startTestChain(), startRedis()]);
const store = new RedisLedger({ redis: redis.url });
/** Per payment: when its holder last wrote it while it was held, and the longest gap seen. */
const lastWrite = new Map<string, number>();
let longestGap = 0;
const ledger: SettlementLedger = {
  get: (key) => store.get(key),
  release: (key, v) => store.release(key, v),
  countUnconfirmed: () => store.countUnconfirmed(),
  listUnconfirmed: (limit) => store.listUnconfirmed(limit),
  close: () => store.close(),
  async compareAndSet(next: Omit<LedgerEntry, "version">, expected: number) {
    const stored = await store.compareAndSet(next, expected);
    const now = Date.now();
    const previous = lastWrite.get(next.key);
    if (previous !== undefined) longestGap = Math.max(longestGap, now - previous);
    if (stored?.state === "claimed" || stored?.state === "broadcast") lastWrite.set(next.key, now);
    else lastWrite.delete(next.key);
    return stored;
  },
};

try {
  const mechanism = createEvmExactMechanism({ networks: [chain.network], signers: [chain.facilitatorKey], ledger, pollingIntervalMs: 250 });
  const requests: PaymentRequest[] = [];
  for (let i = 0; i < settles; i++) requests.push(await chain.pay({ value: 1_000n + BigInt(i) }));
  await chain.rpc("evm_setAutomine", [false]);
  await chain.rpc("evm_setIntervalMining", [blockSeconds]);

  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const started = Date.now();
  const outcomes: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < requests.length) {
        const o = await mechanism.settle(requests[next++]!);
        outcomes.push(o.success ? "success" : o.reason);
      }
    }),
  );
  delay.disable();
  const counts = outcomes.reduce<Record<string, number>>((c, o) => ({ ...c, [o]: (c[o] ?? 0) + 1 }), {});
  const ms = (ns: number) => (ns / 1e6).toFixed(1);
  console.log(`${settles} settles, ${concurrency} at a time, a block every ${blockSeconds} s: ${((Date.now() - started) / 1000).toFixed(1)} s; outcomes ${JSON.stringify(counts)}`);
  console.log(`event loop delay: p50 ${ms(delay.percentile(50))} ms, p99 ${ms(delay.percentile(99))} ms, max ${ms(delay.max)} ms`);
  console.log(`longest time a held entry went unwritten: ${longestGap} ms (lease ${DEFAULT_LEASE_MS} ms, renewed every ${Math.floor(DEFAULT_LEASE_MS / 3)} ms)`);
} finally {
  await chain.rpc("evm_setIntervalMining", [0]).catch(() => undefined);
  await store.close();
  await redis.stop();
  await chain.stop();
}
