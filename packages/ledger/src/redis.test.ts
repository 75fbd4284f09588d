import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRedis, type RedisServer } from "@facilitator/devnet";
import { RedisLedger } from "./redis.ts";
import { describeLedgerContract } from "./testing/ledger-contract-suite.ts";

let server: RedisServer | undefined;
let prefixes = 0;

const ensureServer = async () => (server ??= await startRedis({ appendOnly: true }));
/** Each ledger under its own key prefix on the one server, so tests do not see each other's entries. */
const prefixOf = new WeakMap<object, string>();

const open = (prefix: string, retentionMs?: number) => {
  const ledger = new RedisLedger({ redis: server!.url, prefix, retentionMs });
  prefixOf.set(ledger, prefix);
  return ledger;
};

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describeLedgerContract("RedisLedger (append-only redis-server)", {
  async create() {
    await ensureServer();
    return open(`test${++prefixes}:`);
  },
  async another(ledger) {
    return open(prefixOf.get(ledger)!);
  },
  async reopen(ledger) {
    await ledger.close();
    await server!.restart();
    return open(prefixOf.get(ledger)!);
  },
  crashes: {
    "a SIGKILL of redis-server": async (ledger) => {
      server!.kill();
      await ledger.close();
      await server!.restart();
      return open(prefixOf.get(ledger)!);
    },
  },
  // Redis expires keys on its own clock: time passes for real here.
  async createWithRetention(retentionMs) {
    await ensureServer();
    return { ledger: open(`test${++prefixes}:`, retentionMs), now: Date.now, elapse: sleep };
  },
  async cleanup() {
    await server?.stop();
  },
});

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
