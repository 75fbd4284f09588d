/**
 * Redis (ledger, inference queue, rate limits) killed with SIGKILL and restarted on its append-only
 * file, under an API process and a worker process. With `appendfsync always` every write Redis
 * acknowledged is on disk, so everything the facilitator acknowledged must still be there afterwards.
 *
 * On one redis-server, and on a Redis Cluster (3 primaries with a replica each, append-only, every
 * write waiting for a replica): there every node is killed at once and restarted, and then, under
 * load, one primary is killed alone and its replica promoted.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { privateKeyToAccount } from "viem/accounts";
import type { Hex } from "viem";
import { devKey, DevRole, waitFor } from "@facilitator/devnet";
import { recordId } from "@facilitator/inference";
import { spawnFacilitator, startProcessWorld, stopAll, type FacilitatorProcess, type ProcessWorld, type ProcessWorldOptions } from "./helpers/processes.ts";
import { postForAnswer, type HttpAnswer } from "./helpers/http.ts";
import { evmPaymentBody } from "./helpers/payments.ts";
import { chainView } from "./helpers/chain.ts";
import { relayBatches } from "./helpers/relay.ts";

const KEY = devKey(DevRole.facilitator);
const SIGNER = privateKeyToAccount(KEY).address;
/** A caller that waits longer than this for an answer counts as left hanging. */
const ANSWER_BOUND_MS = 30_000;
/**
 * While Redis is down, callers hear so at once: request-path clients fail fast instead of riding out
 * ioredis's 20 reconnect attempts (about 10 s). A generous bound on a behaviour, not a speed target.
 */
const OUTAGE_ANSWER_BOUND_MS = 3_000;

const DEPLOYMENTS: [string, ProcessWorldOptions][] = [
  ["one redis-server", {}],
  ["a Redis Cluster (every node at once)", { cluster: true }],
];

const hex32 = (): Hex => `0x${randomBytes(32).toString("hex")}`;
const records = (n: number) => Array.from({ length: n }, () => ({ inputHash: hex32(), outputHash: hex32() }));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(DEPLOYMENTS)("on %s", (_label, deployment) => {
  let pw: ProcessWorld;
  let api: FacilitatorProcess;
  let worker: FacilitatorProcess;

  beforeAll(async () => {
    pw = await startProcessWorld(deployment);
    [api, worker] = await Promise.all([
      spawnFacilitator({ name: "api", role: "api", env: pw.env({ evmKeys: [KEY], runWorker: false, receiptTimeoutMs: 5_000 }) }),
      spawnFacilitator({ name: "worker", role: "worker", env: pw.env({ evmKeys: [KEY], batchSize: 50, batchTimeoutMs: 300 }) }),
    ]);
  });

  afterAll(async () => {
    await stopAll([api, worker]);
    await pw?.stop();
  });

  const intake = (body: unknown) => postForAnswer(`${api.url}/inference/settlements`, body, { headers: { authorization: `Bearer ${pw.inferenceApiKey}` }, timeoutMs: ANSWER_BOUND_MS });
  const settle = (body: unknown) => postForAnswer(`${api.url}/settle`, body, { timeoutMs: ANSWER_BOUND_MS });
  const lookup = async (id: Hex) => {
    const res = await fetch(`${api.url}/inference/settlements/${id}`, { signal: AbortSignal.timeout(ANSWER_BOUND_MS) });
    return { status: res.status, body: await res.json() };
  };

  describe("Redis killed (SIGKILL) and restarted on its append-only file", () => {
    /** Acknowledged before the crash. */
    const paid: Awaited<ReturnType<typeof evmPaymentBody>>[] = [];
    const acknowledged: Hex[] = [];
    let sentBefore: number;
    /** What callers were told while Redis was down (all asked at once). */
    let down: {
      door: HttpAnswer;
      refusedIds: Hex[];
      payment: HttpAnswer;
      during: Awaited<ReturnType<typeof evmPaymentBody>>;
      ready: { status: number; body: any };
      lookup: { status: number; body: any };
    };

    beforeAll(async () => {
      for (const i of [1, 2, 3]) {
        const p = await evmPaymentBody(pw.chain, 1_000n * BigInt(i));
        expect((await settle(p.body)).body).toMatchObject({ success: true });
        paid.push(p);
      }
      // Records likely in every state at the crash: anchored, batched, and (the last post) still queued.
      for (let i = 0; i < 4; i++) {
        const a = await intake({ records: records(60) });
        expect(a.status).toBe(202);
        acknowledged.push(...a.body.results.map((r: { id: Hex }) => r.id));
      }

      pw.redis.kill();
      sentBefore = await chain().txCount(SIGNER);
      const during = await evmPaymentBody(pw.chain, 4_000n);
      const refused = records(10);
      const [door, payment, ready, looked] = await Promise.all([
        intake({ records: refused }),
        settle(during.body),
        fetch(`${api.url}/ready`).then(async (r) => ({ status: r.status, body: await r.json() })),
        lookup(acknowledged[0]!),
      ]);
      const refusedIds = refused.map((r) => recordId({ ...r, settlementType: "settle-batch" }));
      down = { door, refusedIds, payment, during, ready, lookup: looked };
    });

    describe("while Redis is down", () => {
      it("the inference door answers 503 service_unavailable with Retry-After, promptly", () => {
        expect(down.door.status).toBe(503);
        expect(down.door.headers.get("retry-after")).toBeTruthy();
        expect(down.door.body).toMatchObject({ error: "service_unavailable" });
        expect(down.door.ms).toBeLessThan(OUTAGE_ANSWER_BOUND_MS);
      });

      it("/settle answers HTTP 200 unexpected_settle_error promptly and broadcasts nothing", async () => {
        expect(down.payment.status).toBe(200);
        expect(down.payment.body).toMatchObject({ success: false, errorReason: "unexpected_settle_error", transaction: "" });
        expect(down.payment.ms).toBeLessThan(OUTAGE_ANSWER_BOUND_MS);
        expect(await chain().txCount(SIGNER)).toBe(sentBefore);
      });

      it("/ready answers 503 naming redis", () => {
        expect(down.ready.status).toBe(503);
        expect(down.ready.body.failing).toEqual(["redis"]);
      });

      // BUG (packages/server/src/routes/inference.ts GET /inference/settlements/:id passes store errors to
      // next(), and app.ts's errorHandler answers 500 with reason unexpected_verify_error for any path).
      it("a record lookup answers 503 service_unavailable while the store is down", () => {
        expect(down.lookup).toMatchObject({ status: 503, body: { error: "service_unavailable" } });
      });
    });

    describe("after the restart", () => {
      beforeAll(async () => {
        await pw.redis.restart();
      });

      it("intake resumes by itself, and every record acknowledged before the crash is anchored exactly once", async () => {
        // The processes reconnect on their own.
        const later = await waitFor(async () => {
          const a = await intake({ records: records(40) });
          return a.status === 202 ? a : undefined;
        }, "the inference door to accept again", 30_000);
        const all = [...acknowledged, ...later.body.results.map((r: { id: Hex }) => r.id as Hex)];

        const batches = await waitFor(async () => {
          const found = await relayBatches(pw.chain.rpcUrl, pw.relay.address, pw.relay.fromBlock);
          return found.reduce((s, b) => s + b.batchSize, 0) >= all.length ? found : undefined;
        }, "every acknowledged record on chain", 60_000);
        expect(batches.reduce((s, b) => s + b.batchSize, 0)).toBe(all.length);
        expect(new Set(batches.map((b) => b.root)).size).toBe(batches.length);
        const views = await waitFor(async () => {
          const v = await Promise.all(all.map(lookup));
          return v.every((x) => x.body.status === "anchored") ? v : undefined;
        }, "every acknowledged record marked anchored", 30_000);
        const perRoot = new Map<string, number>();
        for (const v of views) perRoot.set(v.body.root, (perRoot.get(v.body.root) ?? 0) + 1);
        for (const b of batches) expect(perRoot.get(b.root)).toBe(b.batchSize);
      });

      it("the records refused with 503 were not stored", async () => {
        for (const id of down.refusedIds) expect((await lookup(id)).status).toBe(404);
      });

      it("payments settled before the crash stay settled (duplicate_settlement), and the one refused while down settles once", async () => {
        for (const p of paid) expect((await settle(p.body)).body).toMatchObject({ success: false, errorReason: "duplicate_settlement" });
        expect((await settle(down.during.body)).body).toMatchObject({ success: true });
        expect(await chain().txCount(SIGNER)).toBe(sentBefore + 1);
      });
    });
  });

  if (deployment.cluster) describe("one primary SIGKILLed under load, its replica promoted", failoverUnderLoad);

  function failoverUnderLoad() {
    it("answers every caller, loses no acknowledged record or payment, anchors each record once and moves each payment once", async () => {
      const from = (await chain().blockNumber()) + 1n;
      const anchoredBefore = (await relayBatches(pw.chain.rpcUrl, pw.relay.address, pw.relay.fromBlock)).reduce((s, b) => s + b.batchSize, 0);
      const acked: Hex[] = [];
      /** Payments answered success, and those only ever answered duplicate_settlement (a try whose claim was stored though its answer was an error holds them until its lease ends). */
      const paid: Hex[] = [];
      const held: Hex[] = [];
      let stop = false;
      // Callers retry what was not acknowledged (a 503, an error), with the same records or payment.
      const intakeLoop = (async () => {
        while (!stop) {
          const batch = records(50);
          for (;;) {
            const a = await intake({ records: batch });
            if (a.status === 202) {
              acked.push(...a.body.results.map((r: { id: Hex }) => r.id));
              break;
            }
            await sleep(100);
          }
          await sleep(30);
        }
      })();
      const paymentLoop = (async () => {
        for (let i = 0; !stop; i++) {
          const p = await evmPaymentBody(pw.chain, 100n + BigInt(i));
          for (;;) {
            const a = await settle(p.body);
            if (a.body.success) paid.push(p.nonce);
            else if (a.body.errorReason === "duplicate_settlement") held.push(p.nonce);
            else {
              await sleep(200);
              continue;
            }
            break;
          }
        }
      })();
      await sleep(1_500);
      const primary = await pw.cluster!.primaryOf("{bull}");
      const promoted = await pw.cluster!.killPrimary(primary);
      expect(promoted).not.toBe(primary);
      // Its supervisor starts it again: it rejoins as the replica of the one promoted. Until then that
      // shard's writes cannot reach a replica (REDIS_WAIT_REPLICAS=1) and are refused, not acknowledged.
      await pw.cluster!.restart(primary);
      await sleep(2_000);
      stop = true;
      await Promise.all([intakeLoop, paymentLoop]);
      expect(acked.length).toBeGreaterThan(0);
      expect(paid.length).toBeGreaterThan(0);

      const batches = await waitFor(async () => {
        const found = await relayBatches(pw.chain.rpcUrl, pw.relay.address, pw.relay.fromBlock);
        return found.reduce((s, b) => s + b.batchSize, 0) >= anchoredBefore + acked.length ? found : undefined;
      }, "every acknowledged record on chain", 90_000);
      expect(batches.reduce((s, b) => s + b.batchSize, 0)).toBe(anchoredBefore + acked.length);
      expect(new Set(batches.map((b) => b.root)).size).toBe(batches.length);
      const views = await waitFor(async () => {
        // A lookup that fails in transport (a kept-alive socket the server just closed) is asked again next round.
        const v = await Promise.all(acked.map((id) => lookup(id).catch(() => ({ status: 0, body: {} as { status?: string } }))));
        return v.every((x) => x.body.status === "anchored") ? v : undefined;
      }, "every acknowledged record marked anchored", 60_000);
      expect(views).toHaveLength(acked.length);

      // Every payment acknowledged moved once; none moved twice, and nothing moved that was not asked.
      const used = await chain().authorizationsUsed(from);
      for (const n of paid) expect(used.get(n.toLowerCase()), n).toBe(1);
      for (const n of held) expect(used.get(n.toLowerCase()) ?? 0, n).toBeLessThanOrEqual(1);
      expect([...used.keys()].every((n) => [...paid, ...held].some((m) => m.toLowerCase() === n))).toBe(true);
    }, 240_000);
  }

  const chain = () => chainView(pw.chain);
});
