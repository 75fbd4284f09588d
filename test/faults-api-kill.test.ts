/**
 * An API process killed with SIGKILL in the middle of settlements, with another API process on the
 * same Redis ledger. The kill is placed deterministically: mining is paused so the first payments sit
 * broadcast but unconfirmed, and the dying process's RPC is held so the next payments sit claimed
 * but not yet signed. Those are the two states a settle can be lost in.
 *
 * The processes run with a short settle lease and a long receipt bound: while the holder lives, its
 * renewals keep the payments its own however long it waits; once it is dead, its payments are free
 * within about one lease, long before the receipt bound (which the lease used to be derived from).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { privateKeyToAccount } from "viem/accounts";
import { getAddress, type Hex } from "viem";
import { devKey, DevRole, waitFor } from "@facilitator/devnet";
import { eip3009LedgerKey } from "@facilitator/evm";
import { RedisLedger } from "@facilitator/ledger";
import { spawnFacilitator, startProcessWorld, stopAll, type FacilitatorProcess, type ProcessWorld } from "./helpers/processes.ts";
import { startFaultProxy, type FaultProxy } from "./helpers/fault-proxy.ts";
import { postForAnswer, type HttpAnswer } from "./helpers/http.ts";
import { evmPaymentBody } from "./helpers/payments.ts";
import { chainView, nodeRpc } from "./helpers/chain.ts";

const KEY_A = devKey(DevRole.facilitator);
const KEY_B = devKey(DevRole.facilitator2);
const A = privateKeyToAccount(KEY_A).address;
const B = privateKeyToAccount(KEY_B).address;
/** The settle lease: a dead process's payments are taken over once it runs out. */
const LEASE_MS = 2_000;
/** Long on purpose: the old lease (twice this) would keep the dead process's payments for 40 s. */
const RECEIPT_MS = 20_000;
/** A retry on the other process reaches every payment's outcome well within this after the kill. */
const TAKEOVER_BOUND_MS = LEASE_MS + 10_000;

let pw: ProcessWorld;
let proxy: FaultProxy;
let apiA: FacilitatorProcess;
let apiB: FacilitatorProcess;
let ledger: RedisLedger;

beforeAll(async () => {
  pw = await startProcessWorld();
  proxy = await startFaultProxy(pw.chain.rpcUrl);
  ledger = new RedisLedger({ redis: pw.redis.url });
  const env = (key: Hex, rpcUrl: string) =>
    pw.env({ evmKeys: [key], runWorker: false, receiptTimeoutMs: RECEIPT_MS, leaseMs: LEASE_MS, rpcUrls: { "base-sepolia": rpcUrl } });
  [apiA, apiB] = await Promise.all([
    spawnFacilitator({ name: "api-a", role: "api", env: env(KEY_A, proxy.url) }),
    spawnFacilitator({ name: "api-b", role: "api", env: env(KEY_B, pw.chain.rpcUrl) }),
  ]);
});

afterAll(async () => {
  await nodeRpc(pw.chain.rpcUrl, "evm_setAutomine", [true]).catch(() => undefined);
  await stopAll([apiA, apiB]);
  await ledger?.close();
  await proxy?.stop();
  await pw?.stop();
});

describe("an API process killed with SIGKILL mid-settle", () => {
  it("the caller's retries on the other process end in exactly one success per payment within a lease or so; nothing is broadcast twice or lost", async () => {
    const chain = chainView(pw.chain);
    const anvil = pw.chain.rpcUrl;
    const from = (await chain.blockNumber()) + 1n;
    const [txA, txB, paidBefore] = await Promise.all([chain.txCount(A), chain.txCount(B), chain.balanceOf(pw.chain.payTo)]);
    const broadcastOnes = await Promise.all(Array.from({ length: 8 }, (_, i) => evmPaymentBody(pw.chain, 10_000n + BigInt(i))));
    const claimedOnes = await Promise.all(Array.from({ length: 4 }, (_, i) => evmPaymentBody(pw.chain, 20_000n + BigInt(i))));
    const all = [...broadcastOnes, ...claimedOnes];
    const keyOf = (nonce: Hex) => eip3009LedgerKey(pw.chain.chainId, pw.chain.asset.address, pw.chain.payer.address, nonce);

    // 1. Mining paused: A signs, records and sends the first payments; they wait in the pool.
    await nodeRpc(anvil, "evm_setAutomine", [false]);
    const inFlight: Promise<HttpAnswer>[] = broadcastOnes.map((p) => postForAnswer(`${apiA.url}/settle`, p.body));
    await waitFor(async () => (await chain.client.getTransactionCount({ address: A, blockTag: "pending" })) - txA === 8, "A's 8 transactions in the pool", 10_000);
    // 2. A's node goes silent: the next payments are claimed in the ledger and stop before signing.
    proxy.setMode("hang");
    inFlight.push(...claimedOnes.map((p) => postForAnswer(`${apiA.url}/settle`, p.body)));
    await waitFor(async () => {
      const entries = await Promise.all(all.map((p) => ledger.get(keyOf(p.nonce))));
      return entries.every((e, i) => e?.state === (i < 8 ? "broadcast" : "claimed"));
    }, "8 payments broadcast and 4 claimed in the ledger", 10_000);

    // While A lives, stuck on its node or waiting for receipts, it renews every lease: B keeps off.
    const seen = await Promise.all(all.map((p) => ledger.get(keyOf(p.nonce))));
    await waitFor(async () => {
      const now = await Promise.all(all.map((p) => ledger.get(keyOf(p.nonce))));
      return now.every((e, i) => e!.version >= seen[i]!.version + 3 && e!.state === seen[i]!.state);
    }, "three renewals of every lease A holds", 20 * LEASE_MS);
    for (const p of [broadcastOnes[0]!, claimedOnes[0]!]) {
      const meanwhile = await postForAnswer(`${apiB.url}/settle`, p.body);
      expect(meanwhile.body, JSON.stringify(meanwhile.body)).toMatchObject({ success: false, errorReason: "duplicate_settlement" });
      expect(meanwhile.body.errorMessage ?? JSON.stringify(meanwhile.body)).toMatch(/settling this payment right now/);
    }

    // 3. SIGKILL. Its callers lose their connections without an answer.
    await apiA.kill9();
    const killedAt = Date.now();
    const lost = await Promise.all(inFlight);
    for (const a of lost) expect(a.status === 0 || a.body.errorReason === "settlement_pending", JSON.stringify(a.body)).toBe(true);
    proxy.setMode("pass");
    await nodeRpc(anvil, "evm_setAutomine", [true]);
    await nodeRpc(anvil, "evm_mine");

    // 4. Each caller retries on B until it hears the outcome: B takes each payment over once A's lease ran out.
    const heard = new Map<Hex, HttpAnswer[]>();
    const deadline = killedAt + TAKEOVER_BOUND_MS;
    await Promise.all(
      all.map(async (p) => {
        const answers: HttpAnswer[] = [];
        heard.set(p.nonce, answers);
        for (;;) {
          const a = await postForAnswer(`${apiB.url}/settle`, p.body, { timeoutMs: RECEIPT_MS + 10_000 });
          answers.push(a);
          if (a.body.success) return;
          if (Date.now() > deadline) throw new Error(`no success for ${p.nonce} within ${TAKEOVER_BOUND_MS} ms of the kill: ${JSON.stringify(answers.map((x) => x.body))}`);
          await new Promise((r) => setTimeout(r, 300));
        }
      }),
    );

    for (const [nonce, answers] of heard) {
      // Until the dead process's lease ends B answers "someone is settling this", then the outcome; never a 500.
      for (const a of answers) expect(a.status, JSON.stringify(a.body)).toBe(200);
      expect(answers.filter((a) => a.body.success).length, nonce).toBe(1);
      for (const a of answers.filter((x) => !x.body.success)) expect(["duplicate_settlement", "settlement_pending"]).toContain(a.body.errorReason);
    }
    // The payments A broadcast were reconciled by B against A's transactions, not sent again.
    for (const p of broadcastOnes) {
      const answers = heard.get(p.nonce)!;
      const success = answers.find((a) => a.body.success)!;
      expect(getAddress((await chain.client.getTransaction({ hash: success.body.transaction })).from)).toBe(A);
    }
    const used = await chain.authorizationsUsed(from);
    for (const p of all) expect(used.get(p.nonce.toLowerCase()), p.nonce).toBe(1);
    expect((await chain.txCount(A)) - txA).toBe(8);
    expect((await chain.txCount(B)) - txB).toBe(4);
    const moved = all.reduce((s, p) => s + BigInt((p.body.paymentRequirements as { amount: string }).amount), 0n);
    expect((await chain.balanceOf(pw.chain.payTo)) - paidBefore).toBe(moved);
    // A last repeat of any of them is a duplicate: the one success was given.
    const again = await postForAnswer(`${apiB.url}/settle`, broadcastOnes[0]!.body);
    expect(again.body).toMatchObject({ success: false, errorReason: "duplicate_settlement" });
  });
});
