/**
 * The life of one payment against the settlement ledger, written once for every chain and transfer
 * method. A chain plugs in through `ChainAdapter` (check, sign, record, send, wait; or wait for what
 * was recorded); everything about the ledger lives here.
 *
 * Ledger states of a payment key: absent -> claimed (lease) -> broadcast (signed bytes recorded BEFORE
 * they are sent) -> success | failed. Every write is a compare-and-set on the entry's version, so of
 * any number of concurrent settles exactly one moves an entry on, and only the one whose write turned
 * it into `success` answers success.
 *
 *  - absent: claim it (bound to this request: binding.ts) and let the chain send.
 *  - claimed: someone is at work while its lease is live (duplicate); a dead holder sent nothing, so
 *    the payment is claimed afresh.
 *  - broadcast: someone is waiting for it while its lease is live and nobody was told pending
 *    (duplicate); otherwise it is taken over and reconciled from its recorded bytes, never re-signed.
 *  - success: duplicate, except the one success answer of a payment the facilitator collected itself.
 *  - failed: the recorded failure, unless the chain says a new attempt is safe (no funds moved).
 *
 * Leases (core's HeldEntry): a holder renews its lease every third of it while it works; once the lease
 * ran out the holder is taken for dead. A live holder that stalled past its lease loses its next write,
 * so it records and sends nothing more; it answers `settlement_pending` with what it sent, and its
 * caller's retry reads what the new holder recorded.
 */
import { bindingOf, checkBinding } from "./binding.ts";
import { HeldEntry } from "./lease.ts";
import { claimPaymentIdentifier, paymentIdentifierOf } from "./payment-identifier.ts";
import { storedRequest, type LedgerEntry, type SettleOutcome, type SettlementLedger } from "./mechanism.ts";
import { Reason, reject, type ReasonCode, type Rejection } from "./reasons.ts";
import type { PaymentRequest } from "./request.ts";

/** One payment as the engine sees it, once its chain parsed it and proved the payer's signature. */
export interface LedgerPayment {
  /** The settlement ledger key: identifies the payment across requests, restarts and processes. */
  key: string;
  payer: string;
  amount: bigint;
  request: PaymentRequest;
  /**
   * Why the facilitator will not start a new attempt at this payment (over a cap, past its validity
   * window), if it will not: refused before anything is claimed. A recorded payment is still answered
   * from its record, so one already sent is reconciled, never stranded.
   */
  refusal?: Rejection;
  /** Keep the record at least until this time (ms), even past the ledger's retention. */
  keepUntil?: number;
}

/** Signed bytes as the ledger records them before they are sent. */
export interface RecordedTransaction {
  /** Hash (EVM) or signature (Solana), known before sending. */
  transaction: string;
  rawTransaction: string;
  /** Transactions that must go first (an ERC-2612 permit before its transferFrom); kept when omitted. */
  priorTransactions?: { transaction: string; rawTransaction: string; foreign?: boolean }[];
}

/** What one attempt came to, as the chain side reports it. */
export type ChainOutcome =
  /** Nothing was recorded or sent by this attempt: the claim is given back. */
  | { kind: "refused"; rejection: Rejection; transaction?: string }
  /** `onRecorded` runs once, for the settle whose write recorded the success (gas accounting). */
  | { kind: "success"; transaction: string; onRecorded?: () => void }
  /** Final: no funds moved. `transaction` names a mined transaction worth showing, or "". `onRecorded` as for success. */
  | { kind: "failed"; rejection: Rejection; transaction: string; onRecorded?: () => void }
  /** Sent, outcome not seen within the bound. */
  | { kind: "pending"; transaction: string; why: string }
  /** Another settle took the payment over before this one recorded anything: it answers from the ledger. */
  | { kind: "lost" };

/** What a chain adapter may do with the entry the engine holds for it. */
export interface HeldPayment {
  /** The entry as last stored: what earlier attempts recorded (prior transactions, bytes). */
  readonly entry: LedgerEntry;
  /** Records signed bytes (state `broadcast`) before they are sent. False when the payment was taken over: send nothing. */
  record(tx: RecordedTransaction): Promise<boolean>;
}

export interface ChainAdapter {
  /** Under a claim: check on chain, sign, `record`, send, and wait within a bound. `earlier`: the entry a failed or dead attempt left. */
  send(held: HeldPayment, earlier: LedgerEntry | undefined): Promise<ChainOutcome>;
  /** A recorded broadcast: wait for it, re-sending its recorded bytes. `collecting`: nobody waits for the answer; sign nothing new. */
  reconcile(held: HeldPayment, opts: { collecting: boolean }): Promise<ChainOutcome>;
  /** True when this request is the very payment `entry` recorded (same call): only it may collect that payment's outcome. Default: true. */
  isRecordedPayment?(entry: LedgerEntry): boolean;
  /**
   * A failed entry: "retry" when a new attempt is safe (no funds moved, the chain will decide), the
   * outcome of recorded bytes the node had lost sight of, or undefined to answer the recorded failure.
   */
  afterFailure?(entry: LedgerEntry): Promise<"retry" | ChainOutcome | undefined>;
}

export interface SettlementConfig {
  ledger: SettlementLedger;
  /** Lease of a claim or broadcast, renewed every third of it by its holder. */
  leaseMs: number;
  now?: () => number;
  /** What an error says, for answers: the node's own words, never a URL (an RPC URL can hold a key). */
  describeError?: (e: unknown) => string;
}

/** A lost compare-and-set means another settle moved first: read again, this many times at most. */
const MAX_READS = 5;

/**
 * Settles `payment` through `chain`: one success per payment, nothing broadcast twice; and one payment
 * per `payment-identifier` id and payer, when the payment carries one (payment-identifier.ts).
 */
export async function settleOnLedger(cfg: SettlementConfig, payment: LedgerPayment, chain: ChainAdapter): Promise<SettleOutcome> {
  const id = paymentIdentifierOf(payment.request);
  if (!id.ok) return { success: false, ...id.rejection, transaction: "", payer: payment.payer };
  if (id.value) {
    const now = cfg.now ?? Date.now;
    const held = await claimPaymentIdentifier(cfg.ledger, { key: payment.key, payer: payment.payer, id: id.value, request: payment.request, mayClaim: !payment.refusal }, now).catch(
      (e: unknown) => ({ success: false as const, ...reject(Reason.unexpectedSettle, `settlement failed before anything was sent: ${describeWith(cfg, e)}`), transaction: "", payer: payment.payer }),
    );
    if (held) return held;
  }
  return new PaymentSettlement(cfg, payment, chain).settle();
}

function describeWith(cfg: SettlementConfig, e: unknown): string {
  return cfg.describeError ? cfg.describeError(e) : e instanceof Error ? e.message : String(e);
}

/**
 * The outcome of a broadcast nobody came back for, if its entry is still at `version`: the reconcile
 * path alone, so nothing new is signed. Undefined when there was nothing to collect.
 */
export function collectOnLedger(cfg: SettlementConfig, payment: LedgerPayment, chain: ChainAdapter, version: number): Promise<SettleOutcome | undefined> {
  return new PaymentSettlement(cfg, payment, chain).collect(version);
}

class PaymentSettlement {
  private readonly now: () => number;
  private held?: HeldEntry;
  /** What this settle recorded or took over: from then on the chain decides, and no failure is reported blind. */
  private recorded?: string;
  private collecting = false;
  /** The entry as last read: a store failure after reading a sent payment must not be answered as "nothing sent". */
  private seen?: LedgerEntry;
  private readonly describe: (e: unknown) => string;

  constructor(
    private readonly cfg: SettlementConfig,
    private readonly payment: LedgerPayment,
    private readonly chain: ChainAdapter,
  ) {
    this.now = cfg.now ?? Date.now;
    this.describe = cfg.describeError ?? ((e) => (e instanceof Error ? e.message : String(e)));
  }

  async settle(): Promise<SettleOutcome> {
    try {
      for (let read = 0; read < MAX_READS; read++) {
        const entry = await this.cfg.ledger.get(this.payment.key);
        this.seen = entry;
        const answer = await this.fromEntry(entry);
        if (answer) return answer;
      }
      return this.duplicate("another request is settling this payment right now");
    } catch (e) {
      // Once bytes were recorded the outcome lives on chain: never report a failure the chain may contradict.
      const sent = this.recorded ?? (this.seen?.state === "broadcast" || this.seen?.state === "success" ? this.seen.transaction : undefined);
      if (sent) return this.pending(sent, `outcome not recorded (${this.describe(e)})`);
      return this.failure(reject(Reason.unexpectedSettle, `settlement failed before anything was sent: ${this.describe(e)}`));
    } finally {
      this.held?.stop(); // whatever ended the settle: a lease left behind runs out on its own
    }
  }

  async collect(version: number): Promise<SettleOutcome | undefined> {
    const entry = await this.cfg.ledger.get(this.payment.key);
    if (entry?.state !== "broadcast" || entry.version !== version) return undefined;
    if (!entry.pendingAnswered && (entry.leaseUntil ?? 0) > this.now()) return undefined; // its settle is still at work
    if (checkBinding(entry, this.payment.request) || !this.isRecordedPayment(entry)) return undefined;
    this.collecting = true;
    try {
      return await this.takeOverBroadcast(entry);
    } finally {
      this.held?.stop();
    }
  }

  /** The answer for the entry as read, or undefined to read again (another settle moved first). */
  private async fromEntry(entry: LedgerEntry | undefined): Promise<SettleOutcome | undefined> {
    const { refusal } = this.payment;
    if (!entry) return refusal ? this.failure(refusal) : this.claimAndSend(0, undefined);
    const mismatch = checkBinding(entry, this.payment.request);
    if (mismatch) return this.failure(mismatch);
    const leaseLive = (entry.leaseUntil ?? 0) > this.now();
    switch (entry.state) {
      case "success":
        return entry.successUnanswered && this.isRecordedPayment(entry) ? this.answerCollectedSuccess(entry) : this.alreadySettled(entry);
      case "failed": {
        const next = await this.chain.afterFailure?.(entry);
        if (next === "retry") return refusal ? this.failure(refusal) : this.claimAndSend(entry.version, entry);
        if (next) {
          this.held = new HeldEntry(this.cfg.ledger, entry, this.leaseOptions()); // written once more, no lease needed
          return this.finish(next);
        }
        return this.failure(recordedRejection(entry), entry.transaction ?? "");
      }
      case "claimed":
        if (leaseLive) return this.duplicate("another request is settling this payment right now");
        // Its holder died before recording anything, so nothing was sent: the payment is claimed afresh.
        return refusal ? this.failure(refusal) : this.claimAndSend(entry.version, entry);
      case "broadcast":
        if (!entry.pendingAnswered && leaseLive) {
          return this.duplicate(`another request is settling this payment right now (transaction ${entry.transaction})`, entry.transaction);
        }
        // Only a retry of the very same payment may collect its outcome.
        if (!this.isRecordedPayment(entry)) {
          return this.duplicate(`a different authorization with this payment's nonce was sent in transaction ${entry.transaction}`, entry.transaction);
        }
        return this.takeOverBroadcast(entry);
    }
  }

  private isRecordedPayment(entry: LedgerEntry): boolean {
    return this.chain.isRecordedPayment?.(entry) ?? true;
  }

  /** Claims the payment at `expectedVersion` and lets the chain send. Undefined when another settle claimed it first. */
  private async claimAndSend(expectedVersion: number, earlier: LedgerEntry | undefined): Promise<SettleOutcome | undefined> {
    const p = this.payment;
    const held = await HeldEntry.take(
      this.cfg.ledger,
      {
        key: p.key, state: "claimed", network: p.request.network.caip2, payer: p.payer, amount: p.amount.toString(),
        keepUntil: p.keepUntil,
        binding: bindingOf(p.request),
        // What an earlier attempt sent (a permit) stays on record: it decides what may be skipped.
        priorTransactions: earlier?.priorTransactions,
        rawTransaction: earlier?.rawTransaction,
        request: storedRequest(p.request),
      },
      expectedVersion,
      this.leaseOptions(),
    );
    if (!held) return undefined;
    this.held = held;
    return this.run(() => this.chain.send(this.heldPayment(held), earlier), earlier);
  }

  /** Takes a recorded broadcast over at its version and waits on its recorded bytes. */
  private async takeOverBroadcast(entry: LedgerEntry): Promise<SettleOutcome | undefined> {
    const { version: _version, leaseUntil: _lease, updatedAt: _updated, ...recorded } = entry;
    const held = await HeldEntry.take(this.cfg.ledger, { ...recorded, pendingAnswered: undefined }, entry.version, this.leaseOptions());
    if (!held) return this.collecting ? undefined : this.duplicate(`another request is settling this payment right now (transaction ${entry.transaction})`, entry.transaction);
    this.held = held;
    this.recorded = entry.transaction;
    return this.run(() => this.chain.reconcile(this.heldPayment(held), { collecting: this.collecting }), undefined);
  }

  private heldPayment(held: HeldEntry): HeldPayment {
    return {
      get entry() {
        return held.entry;
      },
      record: async (tx) => {
        const stored = await held.write({
          state: "broadcast",
          transaction: tx.transaction,
          rawTransaction: tx.rawTransaction,
          priorTransactions: tx.priorTransactions ?? held.entry.priorTransactions,
          pendingAnswered: undefined,
        });
        if (stored) this.recorded = tx.transaction;
        return !!stored;
      },
    };
  }

  /** Runs the chain's work under the held entry: an error before anything was recorded gives the claim back; after, the chain decides. */
  private async run(work: () => Promise<ChainOutcome>, earlier: LedgerEntry | undefined): Promise<SettleOutcome> {
    let outcome: ChainOutcome;
    try {
      outcome = await work();
    } catch (e) {
      if (this.recorded) return this.finish({ kind: "pending", transaction: this.recorded, why: `outcome not recorded (${this.describe(e)})` });
      await this.giveBack(earlier).catch(() => undefined);
      return this.failure(reject(Reason.unexpectedSettle, `settlement failed before anything was sent: ${this.describe(e)}`));
    }
    if (outcome.kind === "refused") await this.giveBack(earlier).catch(() => undefined);
    return this.finish(outcome);
  }

  /**
   * Frees a payment this settle claimed and sent nothing for: a fresh claim, or a dead holder's, is
   * removed; a failed entry is written back as it was, without a lease (its binding and what it sent stay).
   */
  private giveBack(earlier: LedgerEntry | undefined): Promise<unknown> {
    const held = this.held!;
    if (!earlier || earlier.state === "claimed") return held.release(); // a dead claim guarded nothing

    const { state, reason, message, transaction } = earlier;
    return held.end({ state, reason, message, transaction, leaseUntil: undefined });
  }

  /** Records the outcome; only the writer that turns the entry into `success` answers success. */
  private async finish(outcome: ChainOutcome): Promise<SettleOutcome> {
    const held = this.held!;
    const done = { leaseUntil: undefined, pendingAnswered: undefined, request: undefined };
    switch (outcome.kind) {
      case "refused":
        return this.failure(outcome.rejection, outcome.transaction ?? "");
      case "lost":
        return this.fromLedgerAfterLoss();
      case "pending":
        // The lease goes with the answer: the caller's retry reconciles at once.
        await held.end({ pendingAnswered: true, leaseUntil: this.now() }).catch(() => undefined);
        return this.pending(outcome.transaction, outcome.why);
      case "failed": {
        const { reason, message } = outcome.rejection;
        const stored = await held.end({ ...done, state: "failed", reason, message, transaction: outcome.transaction || undefined }).catch(() => undefined);
        if (!stored) return this.lostAfterRecording(outcome.transaction);
        outcome.onRecorded?.();
        return this.failure(outcome.rejection, outcome.transaction);
      }
      case "success": {
        const stored = await held
          .end({ ...done, state: "success", transaction: outcome.transaction, reason: undefined, message: undefined, successUnanswered: this.collecting || undefined })
          .catch(() => undefined);
        if (!stored) return this.lostAfterRecording(outcome.transaction);
        outcome.onRecorded?.();
        return { success: true, payer: this.payment.payer, transaction: outcome.transaction, amount: this.payment.amount };
      }
    }
  }

  /**
   * This holder's final write lost (it stalled past its lease and was taken over, or the store
   * failed): the holder that took over waits on the same bytes and records their outcome.
   */
  private lostAfterRecording(transaction: string): SettleOutcome {
    return this.pending(this.recorded ?? transaction, "another request took this payment over and records its outcome");
  }

  /** Taken over before this settle recorded anything: answer from what the ledger shows, never success. */
  private async fromLedgerAfterLoss(): Promise<SettleOutcome> {
    const now = await this.cfg.ledger.get(this.payment.key);
    if (now?.state === "failed") return this.failure(recordedRejection(now), now.transaction ?? "");
    if (now?.state === "success") return this.alreadySettled(now);
    return this.duplicate("another request took this payment over and is settling it", now?.transaction);
  }

  /** The one success answer of a payment the facilitator collected by itself: whoever clears the mark gives it. */
  private async answerCollectedSuccess(entry: LedgerEntry): Promise<SettleOutcome | undefined> {
    const { version: _version, successUnanswered: _mark, ...rest } = entry;
    const cleared = await this.cfg.ledger.compareAndSet({ ...rest, updatedAt: this.now() }, entry.version);
    if (!cleared) return undefined;
    return { success: true, payer: this.payment.payer, transaction: entry.transaction!, amount: this.payment.amount };
  }

  private leaseOptions() {
    return { leaseMs: this.cfg.leaseMs, now: this.now };
  }

  private alreadySettled(entry: LedgerEntry): SettleOutcome {
    return this.duplicate(`this payment was already settled in transaction ${entry.transaction}`, entry.transaction);
  }

  private duplicate(message: string, transaction?: string): SettleOutcome {
    return this.failure(reject(Reason.duplicateSettlement, message), transaction ?? "");
  }

  private pending(transaction: string, why: string): SettleOutcome {
    return this.failure(reject(Reason.settlementPending, `transaction ${transaction} was sent; ${why}. Settle again to collect its outcome.`), transaction);
  }

  private failure(rejection: Rejection, transaction = ""): SettleOutcome {
    return { success: false, ...rejection, transaction, payer: this.payment.payer };
  }
}

/** The failure a `failed` entry recorded. */
export function recordedRejection(entry: LedgerEntry): Rejection {
  return reject((entry.reason as ReasonCode | undefined) ?? Reason.unexpectedSettle, entry.message ?? "this payment's settlement failed");
}
