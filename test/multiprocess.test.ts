/**
 * The facilitator scaled out as an operator runs it: two API processes (RUN_WORKER=false), two
 * `worker` processes, one append-only redis-server, one anvil chain, the local Walrus service and a
 * SettlementRelay. Every process is a separate OS process configured by environment alone.
 *
 * Each API process has its own facilitator key; a third API process shares the first one's key, for
 * the case of one key used by several processes. Both workers share the one relayer key, as they
 * would when started from one `.env`.
 *
 * All of it twice: on one append-only redis-server, and on a Redis Cluster of 3 primaries with a
 * replica each (REDIS_URL=redis+cluster://..., every write waiting for a replica, the queue in 3
 * partitions).
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { privateKeyToAccount } from "viem/accounts";
import type { Hex } from "viem";
import { devKey, DevRole, waitFor } from "@facilitator/devnet";
import { BullQueue, verifyLeafProof, type InferenceRecord } from "@facilitator/inference";
import { spawnFacilitator, startProcessWorld, stopAll, type FacilitatorProcess, type ProcessWorld, type ProcessWorldOptions } from "./helpers/processes.ts";
import { postForAnswer } from "./helpers/http.ts";
import { evmPaymentBody } from "./helpers/payments.ts";
import { chainView } from "./helpers/chain.ts";
import { relayBatches } from "./helpers/relay.ts";

const KEY_A = devKey(DevRole.facilitator);
const KEY_B = devKey(DevRole.facilitator2);
const addressOf = (key: Hex) => privateKeyToAccount(key).address;

const DEPLOYMENTS: [string, ProcessWorldOptions][] = [
  ["one redis-server", {}],
  ["a Redis Cluster", { cluster: true }],
];

describe.each(DEPLOYMENTS)("on %s", (_label, deployment) => {
  let pw: ProcessWorld;
  let apiA: FacilitatorProcess;
  let apiB: FacilitatorProcess;
  /** Shares KEY_A with apiA. */
  let apiShared: FacilitatorProcess;
  let workers: FacilitatorProcess[] = [];
  let chain: ReturnType<typeof chainView>;

  beforeAll(async () => {
    pw = await startProcessWorld(deployment);
    chain = chainView(pw.chain);
    const api = (name: string, key: Hex) =>
      spawnFacilitator({ name, role: "api", env: pw.env({ evmKeys: [key], runWorker: false, receiptTimeoutMs: 10_000 }) });
    const worker = (name: string) =>
      spawnFacilitator({ name, role: "worker", env: pw.env({ evmKeys: [KEY_A], batchSize: 1000, batchTimeoutMs: 500 }) });
    [apiA, apiB, apiShared, ...workers] = await Promise.all([api("api-a", KEY_A), api("api-b", KEY_B), api("api-shared", KEY_A), worker("worker-1"), worker("worker-2")]);
  });

  afterAll(async () => {
    await stopAll([apiA, apiB, apiShared, ...workers]);
    await pw?.stop();
  });

  const settle = (p: FacilitatorProcess, body: unknown) => postForAnswer(`${p.url}/settle`, body);

  describe("payments across API processes", () => {
    it("settles 60 concurrent distinct payments spread over both APIs: every one succeeds and moves its funds exactly once", async () => {
      const from = (await chain.blockNumber()) + 1n;
      const [txA, txB, paidBefore] = await Promise.all([chain.txCount(addressOf(KEY_A)), chain.txCount(addressOf(KEY_B)), chain.balanceOf(pw.chain.payTo)]);
      const payments = await Promise.all(Array.from({ length: 60 }, (_, i) => evmPaymentBody(pw.chain, 1_000n + BigInt(i))));
      const answers = await Promise.all(payments.map((p, i) => settle(i % 2 ? apiB : apiA, p.body)));

      for (const a of answers) expect(a.body, JSON.stringify(a.body)).toMatchObject({ success: true, network: pw.chain.caip2 });
      expect(new Set(answers.map((a) => a.body.transaction)).size).toBe(60);
      const used = await chain.authorizationsUsed(from);
      for (const p of payments) expect(used.get(p.nonce.toLowerCase()), p.nonce).toBe(1);
      const moved = payments.reduce((sum, _p, i) => sum + 1_000n + BigInt(i), 0n);
      expect((await chain.balanceOf(pw.chain.payTo)) - paidBefore).toBe(moved);
      // Each API signs with its own key only, one transaction per payment, nothing more.
      expect((await chain.txCount(addressOf(KEY_A))) - txA).toBe(30);
      expect((await chain.txCount(addressOf(KEY_B))) - txB).toBe(30);
    });

    it("answers the same payment sent to both APIs at once (20 races) with one success and one duplicate_settlement, and one transaction", async () => {
      const from = (await chain.blockNumber()) + 1n;
      const [txA, txB] = await Promise.all([chain.txCount(addressOf(KEY_A)), chain.txCount(addressOf(KEY_B))]);
      const nonces: Hex[] = [];
      for (let round = 0; round < 20; round++) {
        const p = await evmPaymentBody(pw.chain, 5_000n);
        nonces.push(p.nonce);
        const pair = await Promise.all([settle(apiA, p.body), settle(apiB, p.body)]);
        const outcomes = pair.map((a) => (a.body.success ? "success" : a.body.errorReason)).sort();
        expect(outcomes, `round ${round}: ${JSON.stringify(pair.map((a) => a.body))}`).toEqual(["duplicate_settlement", "success"]);
        expect(pair.every((a) => a.status === 200)).toBe(true);
      }
      const used = await chain.authorizationsUsed(from);
      for (const n of nonces) expect(used.get(n.toLowerCase())).toBe(1);
      // The loser of each race never signed anything.
      const sent = (await chain.txCount(addressOf(KEY_A))) - txA + ((await chain.txCount(addressOf(KEY_B))) - txB);
      expect(sent).toBe(20);
    });

    it("with two APIs sharing one facilitator key: the same-payment race (10 rounds) still gives one success and one transaction each", async () => {
      const from = (await chain.blockNumber()) + 1n;
      const txA = await chain.txCount(addressOf(KEY_A));
      const nonces: Hex[] = [];
      for (let round = 0; round < 10; round++) {
        const p = await evmPaymentBody(pw.chain, 7_000n);
        nonces.push(p.nonce);
        const pair = await Promise.all([settle(apiA, p.body), settle(apiShared, p.body)]);
        const outcomes = pair.map((a) => (a.body.success ? "success" : a.body.errorReason)).sort();
        expect(outcomes, `round ${round}: ${JSON.stringify(pair.map((a) => a.body))}`).toEqual(["duplicate_settlement", "success"]);
      }
      const used = await chain.authorizationsUsed(from);
      for (const n of nonces) expect(used.get(n.toLowerCase())).toBe(1);
      expect((await chain.txCount(addressOf(KEY_A))) - txA).toBe(10);
    });

    it("with two APIs sharing one facilitator key: 20 concurrent distinct payments over both all succeed, each moved once", async () => {
      const from = (await chain.blockNumber()) + 1n;
      const payments = await Promise.all(Array.from({ length: 20 }, () => evmPaymentBody(pw.chain, 3_000n)));
      const answers = await Promise.all(payments.map((p, i) => settle(i % 2 ? apiShared : apiA, p.body)));
      for (const a of answers) expect(a.body, JSON.stringify(a.body)).toMatchObject({ success: true });
      const used = await chain.authorizationsUsed(from);
      for (const p of payments) expect(used.get(p.nonce.toLowerCase())).toBe(1);
    });
  });

  describe("inference anchoring across API and worker processes", () => {
    const TOTAL = 20_000;
    const PER_POST = 1_000;

    it("anchors 20,000 records posted in batches over both inference doors exactly once each, checked on chain", async () => {
      const records = Array.from({ length: TOTAL }, () => ({ inputHash: hex32(), outputHash: hex32() }));
      const headers = { authorization: `Bearer ${pw.inferenceApiKey}` };
      const posts: Promise<Hex[]>[] = [];
      for (let i = 0; i < TOTAL; i += PER_POST) {
        const door = (i / PER_POST) % 2 ? apiB : apiA;
        posts.push(
          postForAnswer(`${door.url}/inference/settlements`, { records: records.slice(i, i + PER_POST) }, { headers }).then((a) => {
            expect(a.status, JSON.stringify(a.body).slice(0, 500)).toBe(202);
            expect(a.body).toMatchObject({ accepted: PER_POST, rejected: 0 });
            return a.body.results.map((r: { id: Hex }) => r.id);
          }),
        );
      }
      const ids = (await Promise.all(posts)).flat();
      expect(new Set(ids).size).toBe(TOTAL);

      // On chain: batch sizes add up to exactly the records posted, and no root appears twice.
      const batches = await waitFor(async () => {
        const found = await relayBatches(pw.chain.rpcUrl, pw.relay.address, pw.relay.fromBlock);
        return found.reduce((s, b) => s + b.batchSize, 0) >= TOTAL ? found : undefined;
      }, "batches covering every record on chain", 150_000);
      expect(batches.reduce((s, b) => s + b.batchSize, 0)).toBe(TOTAL);
      expect(new Set(batches.map((b) => b.root)).size).toBe(batches.length);

      // Every record anchored, in one of those batches; each root holds exactly its event's count. Read
      // from the shared store in one round trip (20,000 HTTP lookups would only measure the test's client).
      const queue = new BullQueue({ connection: pw.redis.url, partitions: pw.queue.partitions });
      const entries = await waitFor(async () => {
        const all = await queue.getMany(ids);
        return all.every((e) => e?.status === "anchored") ? all : undefined;
      }, "every record to be marked anchored", 30_000).finally(() => queue.close());
      const perRoot = new Map<string, number>();
      for (const e of entries) perRoot.set(e!.anchor!.root!, (perRoot.get(e!.anchor!.root!) ?? 0) + 1);
      for (const b of batches) expect(perRoot.get(b.root), b.root).toBe(b.batchSize);
      expect(perRoot.size).toBe(batches.length);

      // The public view of one record per batch, through either API: anchored, with a proof of its root
      // and the transaction that emitted that root.
      const firstOfRoot = new Map(entries.map((e, i) => [e!.anchor!.root!, i]));
      const eventTx = new Map(batches.map((b) => [b.root, b.transactionHash]));
      let n = 0;
      for (const [root, i] of firstOfRoot) {
        const door = n++ % 2 ? apiB : apiA;
        const view = await (await fetch(`${door.url}/inference/settlements/${ids[i]}`)).json();
        expect(view).toMatchObject({ status: "anchored", root, transactionHash: eventTx.get(root) });
        const record: InferenceRecord = { inputHash: records[i]!.inputHash, outputHash: records[i]!.outputHash, settlementType: "settle-batch" };
        expect(verifyLeafProof(root, record, view.proof)).toBe(true);
      }
    }, 240_000);
  });
});

const hex32 = (): Hex => `0x${randomBytes(32).toString("hex")}`;
