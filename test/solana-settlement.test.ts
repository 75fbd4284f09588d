/**
 * Settlement under concurrency and slow confirmation, on the real runtime: one payment settles
 * once; a confirmation that does not come in time answers `settlement_pending`, and a later settle
 * reconciles against the recorded signature (re-sending the recorded bytes), never signing again.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  getBase58Decoder,
  getBase64EncodedWireTransaction,
  getBase64Encoder,
  getTransactionDecoder,
  partiallySignTransaction,
  type Transaction,
  type TransactionWithLifetime,
} from "@solana/kit";
import { Reason, type LedgerEntry, type SettleOutcome } from "@facilitator/core";
import { createSvmExactMechanism, settlementKey } from "@facilitator/svm";
import { LmdbLedger } from "@facilitator/ledger";
import { waitFor } from "@facilitator/devnet";
import {
  buildPaymentTx,
  chainSnapshot,
  DEVNET_CAIP2,
  startSolanaFixture,
  tokenBalance,
  v1Request,
  type SolanaFixture,
} from "./helpers/solana.ts";

let fx: SolanaFixture;
beforeAll(async () => {
  // A short confirmation bound keeps the pending cases quick.
  fx = await startSolanaFixture({ mechanism: { confirmTimeoutMs: 400 } });
});
afterEach(() => fx.rpc.resumeLanding());
afterAll(async () => {
  await fx?.stop();
});

const reasons = (outcomes: SettleOutcome[]) => outcomes.map((o) => (o.success ? "success" : o.reason));

const LEASE_MS = 1_500;
/** Another settling process on the same ledger: a short lease, and a landing wait long enough to outlast several. */
const settlerWithLease = () =>
  createSvmExactMechanism({
    networks: [fx.network],
    feePayers: fx.world.feePayers.map((f) => f.secretKey),
    ledger: fx.ledger,
    leaseMs: LEASE_MS,
    confirmTimeoutMs: 30_000,
    pollIntervalMs: 20,
    resendIntervalMs: 200,
  });
const keyOfWire = (wire: string) => settlementKey(DEVNET_CAIP2, new Uint8Array(getTransactionDecoder().decode(getBase64Encoder().encode(wire)).messageBytes));
const landedWithSignature = (signature: string) => fx.rpc.chain.status(signature);

describe("Solana settlement", () => {
  it("twenty concurrent settles of one transaction: one on-chain transaction, one success, nineteen duplicates", async () => {
    const request = v1Request(fx, await buildPaymentTx(fx));
    const before = await chainSnapshot(fx);

    const outcomes = await Promise.all(Array.from({ length: 20 }, () => fx.mechanism.settle(request)));

    const r = reasons(outcomes);
    expect(r.filter((x) => x === "success")).toHaveLength(1);
    expect(r.filter((x) => x === Reason.duplicateSettlement)).toHaveLength(19);
    const after = await chainSnapshot(fx);
    expect(after.transactions).toBe(before.transactions + 1);
    expect(after.payee).toBe(before.payee + 10_000n);
    expect(after.payer).toBe(before.payer - 10_000n);
  });

  it("a confirmation that does not come in time -> settlement_pending; a retry reconciles to success exactly once", async () => {
    const request = v1Request(fx, await buildPaymentTx(fx, { amount: 10_000n, memo: "slow-1" }));
    const before = await chainSnapshot(fx);
    fx.rpc.pauseLanding();

    const first = await fx.mechanism.settle(request);
    expect(first).toMatchObject({ success: false, reason: Reason.settlementPending });
    const signature = first.transaction;
    expect(signature).toMatch(/^[1-9A-HJ-NP-Za-km-z]{64,88}$/);
    expect(await fx.ledger.countUnconfirmed()).toBe(1);
    expect((await chainSnapshot(fx)).payee).toBe(before.payee);

    // The cluster lost the transaction; the retries must re-send the recorded bytes.
    fx.rpc.resumeLanding({ drop: true });
    const retries = await Promise.all([fx.mechanism.settle(request), fx.mechanism.settle(request)]);
    expect(reasons(retries).sort()).toEqual([Reason.duplicateSettlement, "success"].sort());
    expect(retries.find((o) => o.success)?.transaction).toBe(signature);
    expect(landedWithSignature(signature)?.err).toBeNull();

    const later = await fx.mechanism.settle(request);
    expect(later).toMatchObject({ success: false, reason: Reason.duplicateSettlement, transaction: signature });
    const after = await chainSnapshot(fx);
    expect(after.transactions).toBe(before.transactions + 1);
    expect(after.payee).toBe(before.payee + 10_000n);
    expect(await fx.ledger.countUnconfirmed()).toBe(0);
  });

  it("a pending transaction that lands late is reconciled to the one success", async () => {
    const request = v1Request(fx, await buildPaymentTx(fx, { memo: "slow-2" }));
    const before = await chainSnapshot(fx);
    fx.rpc.pauseLanding();
    const first = await fx.mechanism.settle(request);
    expect(first).toMatchObject({ success: false, reason: Reason.settlementPending });
    fx.rpc.resumeLanding(); // it lands late
    expect(await tokenBalance(fx, fx.world.payToTokenAccount)).toBe(before.payee + 10_000n);

    expect(await fx.mechanism.settle(request)).toMatchObject({ success: true, transaction: first.transaction, amount: 10_000n });
    expect((await chainSnapshot(fx)).transactions).toBe(before.transactions + 1);
  });

  it("a pending payment nobody came back for is collected without signing anything; the late retry still gets its one success", async () => {
    const request = v1Request(fx, await buildPaymentTx(fx, { memo: "collect-1" }));
    const before = await chainSnapshot(fx);
    fx.rpc.pauseLanding();
    const first = await fx.mechanism.settle(request);
    expect(first).toMatchObject({ success: false, reason: Reason.settlementPending });
    const key = keyOfWire((request.payload as { transaction: string }).transaction);
    const recorded = (await fx.ledger.get(key))!;
    expect(recorded.request).toMatchObject({ networkId: request.networkId, requirements: { amount: "10000" } });

    expect(await fx.mechanism.collect(request, recorded.version + 1)).toBeUndefined(); // moved on since it was read
    fx.rpc.resumeLanding({ drop: true }); // the cluster lost it: collecting re-sends the recorded bytes
    expect(await fx.mechanism.collect(request, recorded.version)).toMatchObject({ success: true, transaction: first.transaction });
    expect(await fx.ledger.get(key)).toMatchObject({ state: "success", successUnanswered: true });
    expect((await fx.ledger.get(key))!.request).toBeUndefined();

    const retries = await Promise.all([fx.mechanism.settle(request), fx.mechanism.settle(request)]);
    expect(reasons(retries).sort()).toEqual([Reason.duplicateSettlement, "success"].sort());
    expect(retries.find((o) => o.success)?.transaction).toBe(first.transaction);
    expect(await fx.mechanism.settle(request)).toMatchObject({ success: false, reason: Reason.duplicateSettlement });
    const after = await chainSnapshot(fx);
    expect(after.transactions).toBe(before.transactions + 1);
    expect(after.payee).toBe(before.payee + 10_000n);
  });

  it("a pending transaction whose blockhash expires before it lands -> blockhash expired, nothing moved", async () => {
    const request = v1Request(fx, await buildPaymentTx(fx, { memo: "slow-3" }));
    const before = await chainSnapshot(fx);
    fx.rpc.pauseLanding();
    const first = await fx.mechanism.settle(request);
    expect(first).toMatchObject({ success: false, reason: Reason.settlementPending });
    fx.rpc.expireBlockhashes();
    fx.rpc.resumeLanding(); // the held transaction can no longer land

    const retry = await fx.mechanism.settle(request);
    expect(retry).toMatchObject({ success: false, reason: Reason.svmBlockhashExpired, transaction: first.transaction });
    expect(await fx.mechanism.settle(request)).toMatchObject({ success: false, reason: Reason.svmBlockhashExpired });
    const after = await chainSnapshot(fx);
    expect(after.payee).toBe(before.payee);
    expect(after.transactions).toBe(before.transactions);
    expect(await fx.ledger.countUnconfirmed()).toBe(0);
  });

  it("caps lowered while a payment is pending: its outcome is still reconciled and collected, new payments are refused", async () => {
    // A process restarted with tighter caps than the 20,000 units these payments ask for, on the same ledger.
    const strict = await createSvmExactMechanism({
      networks: [fx.network],
      feePayers: fx.world.feePayers.map((f) => f.secretKey),
      ledger: fx.ledger,
      maxComputeUnits: 10_000,
      confirmTimeoutMs: 3_000,
      pollIntervalMs: 20,
    });
    const retried = v1Request(fx, await buildPaymentTx(fx, { memo: "caps-1" }));
    const abandoned = v1Request(fx, await buildPaymentTx(fx, { memo: "caps-2" }));
    const before = await chainSnapshot(fx);
    fx.rpc.pauseLanding();
    const first = await fx.mechanism.settle(retried);
    const second = await fx.mechanism.settle(abandoned);
    expect([first, second]).toMatchObject([{ reason: Reason.settlementPending }, { reason: Reason.settlementPending }]);
    fx.rpc.resumeLanding();

    // Sent under the old caps: nothing new is signed, so the retry gets its one success from the record.
    expect(await strict.verify(retried)).toMatchObject({ isValid: false, reason: Reason.svmComputeUnitsTooHigh });
    expect(await strict.settle(retried)).toMatchObject({ success: true, transaction: first.transaction });
    const key = keyOfWire((abandoned.payload as { transaction: string }).transaction);
    expect(await strict.collect(abandoned, (await fx.ledger.get(key))!.version)).toMatchObject({ success: true, transaction: second.transaction });
    expect(await fx.ledger.countUnconfirmed()).toBe(0);

    // A new payment with the same budget is refused before anything is claimed or signed.
    const fresh = v1Request(fx, await buildPaymentTx(fx, { memo: "caps-3" }));
    const afterTwo = await chainSnapshot(fx);
    expect(afterTwo.transactions).toBe(before.transactions + 2);
    expect(await strict.settle(fresh)).toMatchObject({ success: false, reason: Reason.svmComputeUnitsTooHigh, transaction: "" });
    expect(await fx.ledger.get(keyOfWire((fresh.payload as { transaction: string }).transaction))).toBeUndefined();
    expect(await chainSnapshot(fx)).toEqual(afterTwo);
  });

  it("a claim left by a crashed settle blocks others until its lease ends, then is taken over", async () => {
    const wire = await buildPaymentTx(fx, { memo: "crash-1" });
    const request = v1Request(fx, wire);
    const { messageBytes } = getTransactionDecoder().decode(getBase64Encoder().encode(wire));
    const key = settlementKey(DEVNET_CAIP2, new Uint8Array(messageBytes));
    const live = await fx.ledger.compareAndSet({ key, state: "claimed", network: DEVNET_CAIP2, leaseUntil: Date.now() + 60_000, updatedAt: Date.now() }, 0);
    expect(await fx.mechanism.verify(request)).toMatchObject({ isValid: false, reason: Reason.duplicateSettlement });
    expect(await fx.mechanism.settle(request)).toMatchObject({ success: false, reason: Reason.duplicateSettlement });

    // The holder died: its lease ran out without a broadcast being recorded. Nothing was sent, so the payment is valid again.
    await fx.ledger.compareAndSet({ ...live!, leaseUntil: Date.now() - 1, updatedAt: Date.now() }, live!.version);
    expect(await fx.mechanism.verify(request)).toMatchObject({ isValid: true });
    expect(await fx.mechanism.settle(request)).toMatchObject({ success: true, amount: 10_000n });
  });

  it("a broadcast recorded by a settle that crashed before sending is re-sent from the record and settles once", async () => {
    const wire = await buildPaymentTx(fx, { memo: "crash-2" });
    const request = v1Request(fx, wire);
    const before = await chainSnapshot(fx);
    // What the crashed settle had made durable: the co-signed bytes and their signature, lease long gone.
    const decoded = getTransactionDecoder().decode(getBase64Encoder().encode(wire)) as Transaction & TransactionWithLifetime;
    const cosigned = await partiallySignTransaction([fx.world.feePayers[0].signer.keyPair], decoded);
    const signature = getBase58Decoder().decode(cosigned.signatures[fx.world.feePayers[0].address]!);
    const key = settlementKey(DEVNET_CAIP2, new Uint8Array(decoded.messageBytes));
    await fx.ledger.compareAndSet(
      {
        key,
        state: "broadcast",
        network: DEVNET_CAIP2,
        transaction: signature,
        rawTransaction: getBase64EncodedWireTransaction(cosigned),
        leaseUntil: Date.now() - 1,
        updatedAt: Date.now(),
      },
      0,
    );
    expect(fx.rpc.chain.status(signature)).toBeUndefined();

    expect(await fx.mechanism.settle(request)).toMatchObject({ success: true, transaction: signature });
    expect(await fx.mechanism.settle(request)).toMatchObject({ success: false, reason: Reason.duplicateSettlement });
    const after = await chainSnapshot(fx);
    expect(after.payee).toBe(before.payee + 10_000n);
    expect(after.transactions).toBe(before.transactions + 1);
  });

  it("a settle waiting for its transaction to land keeps the payment for many leases: a retry meanwhile is a duplicate", async () => {
    const wire = await buildPaymentTx(fx, { memo: "lease-1" });
    const request = v1Request(fx, wire);
    const key = keyOfWire(wire);
    const before = await chainSnapshot(fx);
    const patient = await settlerWithLease();
    fx.rpc.pauseLanding();

    const settling = patient.settle(request);
    const sent = await waitFor(async () => ((await fx.ledger.get(key))?.state === "broadcast" ? fx.ledger.get(key) : undefined), "the broadcast to be recorded");
    const retries: SettleOutcome[] = [];
    let latest: LedgerEntry = sent!;
    const deadline = Date.now() + 20 * LEASE_MS;
    while (latest.version < sent!.version + 6 && Date.now() < deadline) {
      retries.push(await fx.mechanism.settle(request));
      latest = (await fx.ledger.get(key))!;
      await new Promise((r) => setTimeout(r, 50));
    }
    // Six renewals by the holder, of the very same record.
    expect(latest.version).toBeGreaterThanOrEqual(sent!.version + 6);
    expect(latest).toMatchObject({ state: "broadcast", transaction: sent!.transaction });
    fx.rpc.resumeLanding();

    expect(await settling).toMatchObject({ success: true, transaction: sent!.transaction, amount: 10_000n });
    expect(reasons(retries).every((r) => r === Reason.duplicateSettlement)).toBe(true);
    const after = await chainSnapshot(fx);
    expect(after.transactions).toBe(before.transactions + 1);
    expect(after.payee).toBe(before.payee + 10_000n);
  });

  it("a settle that stalled past its lease is taken over: both wait on the one signature, one success, nothing signed again", async () => {
    const wire = await buildPaymentTx(fx, { memo: "lease-2" });
    const request = v1Request(fx, wire);
    const key = keyOfWire(wire);
    const before = await chainSnapshot(fx);
    const [stalled, taker] = [await settlerWithLease(), await settlerWithLease()];
    fx.rpc.pauseLanding();

    const holding = stalled.settle(request);
    const sent = (await waitFor(async () => ((await fx.ledger.get(key))?.state === "broadcast" ? fx.ledger.get(key) : undefined), "the broadcast"))!;
    // What the ledger shows once the holder stalled for longer than its lease: the lease has run out.
    let expired: LedgerEntry | undefined;
    while (!expired) {
      const { version, ...seen } = (await fx.ledger.get(key))!;
      expired = await fx.ledger.compareAndSet({ ...seen, leaseUntil: Date.now() - 1, updatedAt: Date.now() }, version);
    }
    const taking = taker.settle(request);
    await waitFor(async () => ((await fx.ledger.get(key))!.version > expired!.version ? true : undefined), "the takeover");
    fx.rpc.resumeLanding();
    const [held, taken] = await Promise.all([holding, taking]);

    expect(taken).toMatchObject({ success: true, transaction: sent.transaction, amount: 10_000n });
    expect(held).toMatchObject({ success: false, reason: Reason.settlementPending, transaction: sent.transaction });
    expect(await fx.ledger.get(key)).toMatchObject({ state: "success", transaction: sent.transaction, rawTransaction: sent.rawTransaction });
    const after = await chainSnapshot(fx);
    expect(after.transactions).toBe(before.transactions + 1);
    expect(after.payee).toBe(before.payee + 10_000n);
  });

  it("a payment already on chain but missing from the ledger (a wiped store) is a duplicate, not a second success", async () => {
    const request = v1Request(fx, await buildPaymentTx(fx, { memo: "wiped-1" }));
    const first = await fx.mechanism.settle(request);
    expect(first).toMatchObject({ success: true });
    // A second facilitator with an empty ledger but the same fee-payer key.
    const dir = await mkdtemp(join(tmpdir(), "svm-wiped-"));
    const ledger = new LmdbLedger(dir);
    try {
      const other = await createSvmExactMechanism({ networks: [fx.network], feePayers: [fx.world.feePayers[0].secretKey], ledger, pollIntervalMs: 20 });
      expect(await other.settle(request)).toMatchObject({ success: false, reason: Reason.duplicateSettlement, transaction: first.transaction });
      expect(await ledger.countUnconfirmed()).toBe(0);
    } finally {
      await ledger.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
