/**
 * The settlement engine's state machine, with a fake chain adapter that records what it was asked to
 * do. The ledger here is an in-memory compare-and-set store (the real stores run the same contract in
 * packages/ledger's suite, and the engine against them in every chain suite).
 */
import { describe, expect, it } from "vitest";
import type { LedgerEntry, SettlementLedger } from "./mechanism.ts";
import { NetworkRegistry } from "./networks.ts";
import { Reason } from "./reasons.ts";
import type { PaymentRequest } from "./request.ts";
import { collectOnLedger, settleOnLedger, type ChainAdapter, type ChainOutcome, type HeldPayment, type LedgerPayment } from "./settlement.ts";
import { ledgerVerdict } from "./ledger-verdict.ts";
import { bindingOf } from "./binding.ts";

class MemoryLedger implements SettlementLedger {
  readonly entries = new Map<string, LedgerEntry>();
  async get(key: string) {
    const e = this.entries.get(key);
    return e && structuredClone(e);
  }
  async compareAndSet(next: Omit<LedgerEntry, "version">, expectedVersion: number) {
    await Promise.resolve(); // a store answers later, letting concurrent callers interleave
    const now = this.entries.get(next.key);
    if ((now?.version ?? 0) !== expectedVersion) return undefined;
    const stored = Object.fromEntries(Object.entries({ ...next, version: expectedVersion + 1 }).filter(([, v]) => v !== undefined)) as unknown as LedgerEntry;
    this.entries.set(next.key, stored);
    return structuredClone(stored);
  }
  async release(key: string, expectedVersion: number) {
    if (this.entries.get(key)?.version !== expectedVersion) return false;
    return this.entries.delete(key);
  }
  async countUnconfirmed() {
    return [...this.entries.values()].filter((e) => e.state === "broadcast").length;
  }
  async listUnconfirmed() {
    return [...this.entries.values()].filter((e) => e.state === "broadcast");
  }
  async close() {}
}

const network = new NetworkRegistry().get("base-sepolia");
const request = (payTo = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"): PaymentRequest => ({
  x402Version: 2, scheme: "exact", network, networkId: network.caip2, payload: {},
  requirements: { scheme: "exact", amount: 1000n, asset: network.asset.address, payTo, maxTimeoutSeconds: 60, extra: {} },
});
const payment = (over: Partial<LedgerPayment> = {}): LedgerPayment => ({ key: "k", payer: "0xpayer", amount: 1000n, request: request(), ...over });

/** A chain that answers as told and counts what it was asked. */
function fakeChain(script: {
  send?: (held: HeldPayment, earlier: LedgerEntry | undefined) => Promise<ChainOutcome>;
  reconcile?: (held: HeldPayment, opts: { collecting: boolean }) => Promise<ChainOutcome>;
  afterFailure?: ChainAdapter["afterFailure"];
  isRecordedPayment?: ChainAdapter["isRecordedPayment"];
} = {}) {
  const calls = { send: 0, reconcile: 0, collecting: [] as boolean[], earlier: [] as (LedgerEntry | undefined)[] };
  const adapter: ChainAdapter = {
    async send(held, earlier) {
      calls.send++;
      calls.earlier.push(earlier);
      if (script.send) return script.send(held, earlier);
      return (await held.record({ transaction: "0xsent", rawTransaction: "0xraw" })) ? { kind: "success", transaction: "0xsent" } : { kind: "lost" };
    },
    async reconcile(held, opts) {
      calls.reconcile++;
      calls.collecting.push(opts.collecting);
      return script.reconcile ? script.reconcile(held, opts) : { kind: "success", transaction: held.entry.transaction! };
    },
    ...(script.afterFailure ? { afterFailure: script.afterFailure } : {}),
    ...(script.isRecordedPayment ? { isRecordedPayment: script.isRecordedPayment } : {}),
  };
  return { adapter, calls };
}

const LEASE = 5_000;
function world(now = 1_000_000) {
  const ledger = new MemoryLedger();
  const clock = { now };
  const cfg = { ledger, leaseMs: LEASE, now: () => clock.now };
  const seed = (entry: Partial<LedgerEntry> & Pick<LedgerEntry, "state">) =>
    ledger.entries.set("k", { key: "k", network: network.caip2, version: 3, updatedAt: clock.now, binding: bindingOf(request()), ...entry } as LedgerEntry);
  return { ledger, clock, cfg, seed };
}
const recordAndAnswer = (outcome: ChainOutcome) => async (held: HeldPayment) => {
  await held.record({ transaction: "0xsent", rawTransaction: "0xraw" });
  return outcome;
};

describe("settleOnLedger: one payment's life", () => {
  it("claims, lets the chain record and send, records the success bound to the request; a repeat is a duplicate", async () => {
    const { cfg, ledger } = world();
    const chain = fakeChain();
    expect(await settleOnLedger(cfg, payment(), chain.adapter)).toEqual({ success: true, payer: "0xpayer", transaction: "0xsent", amount: 1000n });
    expect(ledger.entries.get("k")).toMatchObject({ state: "success", transaction: "0xsent", binding: { amount: "1000" } });
    expect(ledger.entries.get("k")?.request).toBeUndefined();
    expect(await settleOnLedger(cfg, payment(), chain.adapter)).toMatchObject({ success: false, reason: Reason.duplicateSettlement, transaction: "0xsent" });
    expect(chain.calls.send).toBe(1);
  });

  it("of ten concurrent settles of one payment, one sends and succeeds; the rest are duplicates", async () => {
    const { cfg } = world();
    const chain = fakeChain();
    const answers = await Promise.all(Array.from({ length: 10 }, () => settleOnLedger(cfg, payment(), chain.adapter)));
    expect(answers.filter((a) => a.success)).toHaveLength(1);
    expect(answers.filter((a) => !a.success).every((a) => !a.success && a.reason === Reason.duplicateSettlement)).toBe(true);
    expect(chain.calls.send).toBe(1);
  });

  it.each([
    ["a refusal before the claim (over a cap)", { refusal: { reason: Reason.amountNotPositive, message: "zero" } }, undefined, Reason.amountNotPositive, 0],
    ["the chain's refusal: the claim is given back", {}, { kind: "refused", rejection: { reason: Reason.evmSimulationFailed, message: "reverts" } }, Reason.evmSimulationFailed, 1],
  ] as const)("%s leaves no entry", async (_name, over, outcome, reason, sends) => {
    const { cfg, ledger } = world();
    const chain = fakeChain(outcome ? { send: async () => outcome } : {});
    expect(await settleOnLedger(cfg, payment(over), chain.adapter)).toMatchObject({ success: false, reason, transaction: "" });
    expect(ledger.entries.size).toBe(0);
    expect(chain.calls.send).toBe(sends);
  });

  it("an error before anything was recorded gives the claim back; after, the answer is pending with the hash", async () => {
    const { cfg, ledger } = world();
    const before = fakeChain({ send: async () => Promise.reject(new Error("node down")) });
    expect(await settleOnLedger(cfg, payment(), before.adapter)).toMatchObject({ reason: Reason.unexpectedSettle, message: expect.stringContaining("node down") });
    expect(ledger.entries.size).toBe(0);
    const after = fakeChain({ send: async (held) => (await held.record({ transaction: "0xh", rawTransaction: "0xr" }), Promise.reject(new Error("lost sight"))) });
    expect(await settleOnLedger(cfg, payment(), after.adapter)).toMatchObject({ reason: Reason.settlementPending, transaction: "0xh" });
    expect(ledger.entries.get("k")).toMatchObject({ state: "broadcast", transaction: "0xh", rawTransaction: "0xr", pendingAnswered: true });
  });

  it("a pending answer lets the next settle reconcile the recorded bytes (never send again) and answer once", async () => {
    const { cfg, ledger } = world();
    const chain = fakeChain({ send: recordAndAnswer({ kind: "pending", transaction: "0xsent", why: "slow" }) });
    expect(await settleOnLedger(cfg, payment(), chain.adapter)).toMatchObject({ reason: Reason.settlementPending, transaction: "0xsent" });
    expect(ledger.entries.get("k")).toMatchObject({ state: "broadcast", pendingAnswered: true, request: expect.any(Object) });
    expect(await settleOnLedger(cfg, payment(), chain.adapter)).toMatchObject({ success: true, transaction: "0xsent" });
    expect(chain.calls).toMatchObject({ send: 1, reconcile: 1, collecting: [false] });
  });

  it.each([
    ["claimed, lease live", { state: "claimed", leaseUntil: 1_000_000 + LEASE }, Reason.duplicateSettlement, { send: 0, reconcile: 0 }],
    ["claimed, holder dead: claimed afresh", { state: "claimed", leaseUntil: 1 }, undefined, { send: 1, reconcile: 0 }],
    ["broadcast, its settle waiting", { state: "broadcast", transaction: "0xb", rawTransaction: "0xr", leaseUntil: 1_000_000 + LEASE }, Reason.duplicateSettlement, { send: 0, reconcile: 0 }],
    ["broadcast, holder dead: taken over", { state: "broadcast", transaction: "0xb", rawTransaction: "0xr", leaseUntil: 1 }, undefined, { send: 0, reconcile: 1 }],
    ["broadcast, pending answered: reconciled", { state: "broadcast", transaction: "0xb", rawTransaction: "0xr", pendingAnswered: true, leaseUntil: 1_000_000 + LEASE }, undefined, { send: 0, reconcile: 1 }],
    ["success", { state: "success", transaction: "0xb" }, Reason.duplicateSettlement, { send: 0, reconcile: 0 }],
    ["failed, the chain does not retry", { state: "failed", reason: Reason.evmTransactionFailed, message: "reverted", transaction: "0xb" }, Reason.evmTransactionFailed, { send: 0, reconcile: 0 }],
  ] as const)("%s", async (_name, entry, reason, calls) => {
    const { cfg, seed } = world();
    seed(entry);
    const chain = fakeChain();
    const answer = await settleOnLedger(cfg, payment(), chain.adapter);
    if (reason) expect(answer).toMatchObject({ success: false, reason });
    else expect(answer.success).toBe(true);
    expect(chain.calls).toMatchObject(calls);
  });

  it("refuses a request asking another payee, amount or asset than the payment's first: nothing moves, the entry stays", async () => {
    for (const state of ["claimed", "broadcast", "failed", "success"] as const) {
      const { cfg, seed, ledger } = world();
      seed({ state, transaction: "0xb", rawTransaction: "0xr", pendingAnswered: true, leaseUntil: 1 });
      const before = structuredClone(ledger.entries.get("k"));
      const chain = fakeChain({ afterFailure: async () => "retry" });
      const redirected = payment({ request: request("0x000000000000000000000000000000000000dEaD") });
      expect(await settleOnLedger(cfg, redirected, chain.adapter)).toMatchObject({ success: false, reason: Reason.paymentRequestMismatch, transaction: "" });
      expect(chain.calls).toMatchObject({ send: 0, reconcile: 0 });
      expect(ledger.entries.get("k")).toEqual(before);
    }
  });

  it("a broadcast of another call under this key (another signature) is not reconciled by this request", async () => {
    const { cfg, seed } = world();
    seed({ state: "broadcast", transaction: "0xb", rawTransaction: "0xr", pendingAnswered: true });
    const chain = fakeChain({ isRecordedPayment: () => false });
    expect(await settleOnLedger(cfg, payment(), chain.adapter)).toMatchObject({ reason: Reason.duplicateSettlement, transaction: "0xb" });
    expect(chain.calls.reconcile).toBe(0);
  });

  it("a failed payment the chain may retry is claimed again with what it sent on record; a refusal writes it back as it was", async () => {
    const { cfg, seed, ledger } = world();
    const prior = [{ transaction: "0xpermit", rawTransaction: "0xp" }];
    seed({ state: "failed", reason: Reason.evmTransactionFailed, message: "reverted", transaction: "0xb", rawTransaction: "0xr", priorTransactions: prior });
    let seenOnClaim: LedgerEntry | undefined;
    const refusing = fakeChain({
      afterFailure: async () => "retry",
      send: async (held) => ((seenOnClaim = held.entry), { kind: "refused", rejection: { reason: Reason.insufficientFunds, message: "gone" } }),
    });
    expect(await settleOnLedger(cfg, payment(), refusing.adapter)).toMatchObject({ reason: Reason.insufficientFunds });
    expect(seenOnClaim).toMatchObject({ state: "claimed", priorTransactions: prior });
    expect(refusing.calls.earlier[0]).toMatchObject({ state: "failed" });
    expect(ledger.entries.get("k")).toMatchObject({ state: "failed", reason: Reason.evmTransactionFailed, transaction: "0xb", priorTransactions: prior });
    expect(ledger.entries.get("k")?.leaseUntil).toBeUndefined();

    const paying = fakeChain({ afterFailure: async () => "retry" });
    expect(await settleOnLedger(cfg, payment(), paying.adapter)).toMatchObject({ success: true, transaction: "0xsent" });
  });

  it("a failed payment whose recorded bytes were mined after all is recorded a success, without sending", async () => {
    const { cfg, seed, ledger } = world();
    seed({ state: "failed", reason: Reason.unexpectedSettle, message: "?", rawTransaction: "0xr" });
    const chain = fakeChain({ afterFailure: async () => ({ kind: "success", transaction: "0xmined" }) });
    expect(await settleOnLedger(cfg, payment(), chain.adapter)).toMatchObject({ success: true, transaction: "0xmined" });
    expect(ledger.entries.get("k")).toMatchObject({ state: "success", transaction: "0xmined" });
    expect(chain.calls.send).toBe(0);
  });

  it("a dead holder's claim refused on retry is removed, not written back under the new request", async () => {
    const { cfg, seed, ledger } = world();
    seed({ state: "claimed", leaseUntil: 1 });
    const chain = fakeChain({ send: async () => ({ kind: "refused", rejection: { reason: Reason.svmSimulationFailed, message: "no" } }) });
    expect(await settleOnLedger(cfg, payment(), chain.adapter)).toMatchObject({ reason: Reason.svmSimulationFailed });
    expect(ledger.entries.size).toBe(0);
  });

  it("a store that fails while a sent payment is taken over answers pending with its transaction, never 'nothing was sent'", async () => {
    const { cfg, seed, ledger } = world();
    seed({ state: "broadcast", transaction: "0xb", rawTransaction: "0xr", pendingAnswered: true });
    ledger.compareAndSet = async () => Promise.reject(new Error("store down"));
    expect(await settleOnLedger(cfg, payment(), fakeChain().adapter)).toMatchObject({ reason: Reason.settlementPending, transaction: "0xb" });
  });

  it("counts a success's gas once, for the writer that recorded it", async () => {
    const { cfg } = world();
    let counted = 0;
    const chain = fakeChain({ send: recordAndAnswer({ kind: "success", transaction: "0xsent", onRecorded: () => counted++ }) });
    await Promise.all([settleOnLedger(cfg, payment(), chain.adapter), settleOnLedger(cfg, payment(), chain.adapter)]);
    expect(counted).toBe(1);
  });

  it("a holder taken over before it recorded answers from the ledger; after, it answers pending with its bytes", async () => {
    const { cfg, ledger } = world();
    const takeOver = () => {
      const e = ledger.entries.get("k")!;
      ledger.entries.set("k", { ...e, version: e.version + 1 });
    };
    const early = fakeChain({ send: async (held) => (takeOver(), (await held.record({ transaction: "0x1", rawTransaction: "0xr" })) ? { kind: "success", transaction: "0x1" } : { kind: "lost" }) });
    expect(await settleOnLedger(cfg, payment(), early.adapter)).toMatchObject({ reason: Reason.duplicateSettlement });
    ledger.entries.clear();
    const late = fakeChain({ send: async (held) => (await held.record({ transaction: "0x2", rawTransaction: "0xr" }), takeOver(), { kind: "success", transaction: "0x2" }) });
    expect(await settleOnLedger(cfg, payment(), late.adapter)).toMatchObject({ reason: Reason.settlementPending, transaction: "0x2" });
  });
});

describe("collectOnLedger: settlements nobody came back for", () => {
  it("reconciles a pending broadcast at its version, signing nothing; its one success goes to the payment's next settle", async () => {
    const { cfg, seed, ledger } = world();
    seed({ state: "broadcast", transaction: "0xb", rawTransaction: "0xr", pendingAnswered: true, leaseUntil: 1 });
    const chain = fakeChain();
    expect(await collectOnLedger(cfg, payment(), chain.adapter, 2)).toBeUndefined(); // moved on since read
    expect(await collectOnLedger(cfg, payment(), chain.adapter, 3)).toMatchObject({ success: true, transaction: "0xb" });
    expect(chain.calls).toMatchObject({ send: 0, reconcile: 1, collecting: [true] });
    expect(ledger.entries.get("k")).toMatchObject({ state: "success", successUnanswered: true });
    const [first, second] = await Promise.all([settleOnLedger(cfg, payment(), chain.adapter), settleOnLedger(cfg, payment(), chain.adapter)]);
    expect([first.success, second.success].sort()).toEqual([false, true]);
    expect(await settleOnLedger(cfg, payment(), chain.adapter)).toMatchObject({ reason: Reason.duplicateSettlement });
  });

  it.each([
    ["its settle still at work", { state: "broadcast", transaction: "0xb", rawTransaction: "0xr", leaseUntil: 1_000_000 + LEASE }],
    ["not a broadcast", { state: "claimed", leaseUntil: 1 }],
  ] as const)("collects nothing when %s", async (_name, entry) => {
    const { cfg, seed } = world();
    seed(entry);
    const chain = fakeChain();
    expect(await collectOnLedger(cfg, payment(), chain.adapter, 3)).toBeUndefined();
    expect(chain.calls).toMatchObject({ send: 0, reconcile: 0 });
  });
});

describe("ledgerVerdict: what verify reads in a record", () => {
  const now = 1_000_000;
  const entry = (e: Partial<LedgerEntry> & Pick<LedgerEntry, "state">): LedgerEntry => ({ key: "k", network: network.caip2, version: 1, updatedAt: now, binding: bindingOf(request()), ...e });
  const SETTLE = "settle will answer";
  const CHAIN = "chain decides";
  it.each([
    ["no record", undefined, {}, CHAIN],
    ["a live claim", entry({ state: "claimed", leaseUntil: now + 1 }), {}, Reason.duplicateSettlement],
    ["a dead claim (nothing was sent)", entry({ state: "claimed", leaseUntil: now - 1 }), {}, CHAIN],
    ["a broadcast its settle is waiting for", entry({ state: "broadcast", transaction: "0xb", leaseUntil: now + 1 }), {}, Reason.duplicateSettlement],
    ["a broadcast answered pending: the clients' retry verifies before it settles", entry({ state: "broadcast", transaction: "0xb", pendingAnswered: true, leaseUntil: now + 1 }), {}, SETTLE],
    ["a broadcast whose holder died", entry({ state: "broadcast", transaction: "0xb", leaseUntil: now - 1 }), {}, SETTLE],
    ["a pending broadcast of another call under this key", entry({ state: "broadcast", transaction: "0xb", pendingAnswered: true }), { isRecordedPayment: () => false }, Reason.duplicateSettlement],
    ["a success", entry({ state: "success", transaction: "0xb" }), {}, Reason.duplicateSettlement],
    ["a success collected for nobody yet", entry({ state: "success", transaction: "0xb", successUnanswered: true }), {}, SETTLE],
    ["a failure", entry({ state: "failed", reason: Reason.svmBlockhashExpired, message: "late" }), {}, Reason.svmBlockhashExpired],
    ["a failure the chain may retry", entry({ state: "failed", reason: Reason.evmTransactionFailed, message: "reverted" }), { retriesFailure: true }, CHAIN],
    ["another payee than the record's", entry({ state: "broadcast", pendingAnswered: true, binding: { ...bindingOf(request()), payTo: "0xother" } }), {}, Reason.paymentRequestMismatch],
  ] as const)("%s", (_name, e, opts, expected) => {
    const verdict = ledgerVerdict(e, request(), now, opts);
    expect(verdict.kind === "refused" ? verdict.rejection.reason : verdict.kind).toBe(expected);
  });
});

describe("payment-identifier: one payment per id and payer", () => {
  const withId = (key: string, id = "order_0123456789abcdef", over: Partial<LedgerPayment> = {}) =>
    payment({ key, request: { ...request(), extensions: { "payment-identifier": { info: { required: false, id } } } }, ...over });

  it("a second payment carrying the first one's id is answered from the first and never sent", async () => {
    const { cfg, ledger } = world();
    const chain = fakeChain();
    expect(await settleOnLedger(cfg, withId("k1"), chain.adapter)).toMatchObject({ success: true, transaction: "0xsent" });
    const second = await settleOnLedger(cfg, withId("k2"), chain.adapter);
    expect(second).toMatchObject({ success: false, reason: Reason.duplicateSettlement, transaction: "0xsent" });
    expect(chain.calls.send).toBe(1);
    expect(ledger.entries.has("k2")).toBe(false);
    // The first payment's own retry is still answered from its record, as without an id.
    expect(await settleOnLedger(cfg, withId("k1"), chain.adapter)).toMatchObject({ reason: Reason.duplicateSettlement, transaction: "0xsent" });
  });

  it("of concurrent payments sharing an id, exactly one is sent", async () => {
    const { cfg } = world();
    const chain = fakeChain();
    const answers = await Promise.all(["a", "b", "c", "d", "e", "f"].map((k) => settleOnLedger(cfg, withId(k), chain.adapter)));
    expect(answers.filter((a) => a.success)).toHaveLength(1);
    expect(chain.calls.send).toBe(1);
  });

  it("an id stays spent after its payment failed: a new payment under it is refused, naming the failure", async () => {
    const { cfg } = world();
    const failing = fakeChain({ send: recordAndAnswer({ kind: "failed", rejection: { reason: Reason.evmTransactionFailed, message: "reverted" }, transaction: "0xsent" }) });
    expect(await settleOnLedger(cfg, withId("k1"), failing.adapter)).toMatchObject({ success: false, reason: Reason.evmTransactionFailed });
    const chain = fakeChain();
    const again = await settleOnLedger(cfg, withId("k2"), chain.adapter);
    expect(again).toMatchObject({ success: false, reason: Reason.duplicateSettlement });
    expect(!again.success && again.message).toContain(Reason.evmTransactionFailed);
    expect(chain.calls.send).toBe(0);
  });

  it("the same id of another payer is another payment; a refused payment leaves its id free", async () => {
    const { cfg } = world();
    const chain = fakeChain();
    const refused = await settleOnLedger(cfg, withId("k1", undefined, { refusal: { reason: Reason.validBefore, message: "expired" } }), chain.adapter);
    expect(refused).toMatchObject({ success: false, reason: Reason.validBefore });
    expect(await settleOnLedger(cfg, withId("k2"), chain.adapter)).toMatchObject({ success: true });
    expect(await settleOnLedger(cfg, withId("k3", undefined, { payer: "0xother" }), chain.adapter)).toMatchObject({ success: true });
    expect(chain.calls.send).toBe(2);
  });

  it.each([["too short", "short"], ["a character outside the alphabet", "order 0123456789abcdef"], ["not a string", 42]])("an id %s is refused before anything is claimed", async (_name, id) => {
    const { cfg, ledger } = world();
    const chain = fakeChain();
    const answer = await settleOnLedger(cfg, withId("k1", id as string), chain.adapter);
    expect(answer).toMatchObject({ success: false, reason: Reason.invalidPaymentIdentifier });
    expect(ledger.entries.size).toBe(0);
    expect(chain.calls.send).toBe(0);
  });

  it("another caller (API key) cannot learn the outcome of an id through a payment of its own", async () => {
    const { cfg } = world();
    const chain = fakeChain();
    const first = withId("k1");
    await settleOnLedger(cfg, { ...first, request: { ...first.request, caller: "tenant-a" } }, chain.adapter);
    const stranger = withId("k2");
    const answer = await settleOnLedger(cfg, { ...stranger, request: { ...stranger.request, caller: "tenant-b" } }, chain.adapter);
    expect(answer).toMatchObject({ success: false, reason: Reason.paymentRequestMismatch, transaction: "" });
  });
});
