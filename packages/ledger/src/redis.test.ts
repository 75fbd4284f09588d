import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { redisBackends, startRedis, type RedisServer } from "@facilitator/devnet";
import { RedisLedger } from "./redis.ts";
import { describeLedgerContract } from "./testing/ledger-contract-suite.ts";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * On one append-only redis-server, and on a Redis Cluster whose writes wait for a replica (WAIT 1), where
 * the ledger's shards spread over every primary and each primary is killed in turn (its replica promoted).
 */
for (const backend of redisBackends()) {
  let prefixes = 0;
  /** Each ledger under its own key prefix, so tests do not see each other's entries. */
  const settings = new WeakMap<object, { url: string; prefix: string }>();
  const open = (url: string, prefix: string, retentionMs?: number) => {
    const ledger = new RedisLedger({ redis: url, prefix, retentionMs, replication: backend.replication });
    settings.set(ledger, { url, prefix });
    return ledger;
  };
  const reopenLike = (ledger: object) => open(settings.get(ledger)!.url, settings.get(ledger)!.prefix);

  describeLedgerContract(`RedisLedger (${backend.label})`, {
    async create() {
      return open(await backend.url(), `test${++prefixes}:`);
    },
    async another(ledger) {
      return reopenLike(ledger);
    },
    async reopen(ledger) {
      await ledger.close();
      return reopenLike(ledger);
    },
    crashes: {
      "the loss of every Redis server in turn (a SIGKILL; on the cluster each primary, its replica promoted)": async (ledger) => {
        await ledger.close();
        await backend.crashEach();
        return reopenLike(ledger);
      },
    },
    // Redis expires keys on its own clock: time passes for real here.
    async createWithRetention(retentionMs) {
      return { ledger: open(await backend.url(), `test${++prefixes}:`, retentionMs), now: Date.now, elapse: sleep };
    },
    async cleanup() {
      await backend.stop();
    },
  });
}

describe("RedisLedger while Redis is away", () => {
  let redis: RedisServer;
  const opened: RedisLedger[] = [];
  const ledgerOn = (url: string) => {
    const l = new RedisLedger({ redis: url, prefix: "away:" });
    opened.push(l);
    return l;
  };
  const claim = (key: string) => ({ key, state: "claimed" as const, network: "eip155:84532", leaseUntil: Date.now() + 60_000, updatedAt: Date.now() });

  beforeAll(async () => {
    redis = await startRedis({ appendOnly: true });
  });
  afterAll(async () => {
    for (const l of opened) await l.close();
    await redis?.stop();
  });

  it("serves the first commands of a new ledger once its connection is up, without failing them", async () => {
    const ledger = ledgerOn(redis.url); // no await between opening and writing
    expect((await ledger.compareAndSet(claim("first"), 0))?.version).toBe(1);
  });

  it("fails a command at once while Redis is down (not after ioredis's ~10 s of retries), and serves again after it returns, data intact", async () => {
    const ledger = ledgerOn(redis.url);
    await ledger.compareAndSet(claim("kept"), 0);
    redis.kill();
    // A generous bound on a behaviour, not a performance target: the old client took about 10 s.
    const started = Date.now();
    const outcomes = await Promise.allSettled([ledger.get("kept"), ledger.compareAndSet(claim("during"), 0), ledger.countUnconfirmed()]);
    expect(outcomes.map((o) => o.status)).toEqual(["rejected", "rejected", "rejected"]);
    expect(Date.now() - started).toBeLessThan(3_000);

    await redis.restart();
    const deadline = Date.now() + 15_000;
    let back: unknown;
    while (back === undefined && Date.now() < deadline) {
      back = await ledger.get("kept").catch(() => undefined);
      if (back === undefined) await sleep(100);
    }
    expect(back).toMatchObject({ key: "kept", state: "claimed", version: 1 });
    expect(await ledger.get("during")).toBeUndefined(); // refused, so not written
  });
});
