/**
 * One settle request's chain side (core's `ChainAdapter`): check on chain, sign at the signer pool's
 * nonces, have the engine record the signed bytes, send them, and wait for the receipt.
 *
 * A payment may need calls before the one that moves the funds (ERC-2612: `permit`, then `transferFrom`).
 * They are signed at consecutive nonces of one signer and recorded together (`priorTransactions`)
 * before the first is sent; `transaction` is always the funds-moving one, whose receipt decides.
 * A reconcile re-sends recorded bytes as they are (same hash: they can execute at most once), and
 * signs only a new transfer after a revert, never a prior call again.
 */
import {
  Reason,
  reject,
  type ChainAdapter,
  type ChainOutcome,
  type HeldPayment,
  type LedgerEntry,
  type LedgerPayment,
  type PaymentRequest,
  type Rejection,
  type SettlementConfig,
} from "@facilitator/core";
import { keccak256, parseTransaction, recoverTransactionAddress, type Hash, type Hex, type TransactionReceipt } from "viem";
import { getReceipt, waitForReceipt } from "./receipt.ts";
import { nodeMessage } from "./rpc-errors.ts";
import { sendRawTransaction } from "./send.ts";
import { capPlan, markContractPayerReverted, type TxPlan } from "./settle-limits.ts";
import { isRecordedCall, mayTryAgain } from "./settle-record.ts";
import type { NetworkRuntime, SettleConfig } from "./settle.ts";
import type { EvmSigner, SignedTx } from "./signer-pool.ts";
import type { EvmPayment } from "./transfer-method.ts";

/** Re-signs at a fresh nonce when another transaction took ours (the key used by another process, which
 * can take it again while both race for the next nonces). */
const MAX_NONCE_RETRIES = 8;

export function engineConfig(cfg: SettleConfig): SettlementConfig {
  return { ledger: cfg.ledger, leaseMs: cfg.leaseMs, now: cfg.now, describeError: nodeMessage };
}

/** `refused`: why no new attempt may start (a cooling-off contract payer). */
export function ledgerPayment(rt: NetworkRuntime, cfg: SettleConfig, request: PaymentRequest, p: EvmPayment, refused?: Rejection): LedgerPayment {
  // A new attempt needs the payment still inside its validity window; a recorded one is reconciled whatever the time.
  const refusal = refused ?? rt.handler.checkTime(p, BigInt(Math.floor(cfg.now() / 1000)));
  return { key: p.ledgerKey, payer: p.payer, amount: p.amount, request, keepUntil: rt.handler.keepRecordUntil?.(p), ...(refusal ? { refusal } : {}) };
}

type PriorSent = { kind: "sent" } | { kind: "taken" | "rejected"; index: number; message: string };

/** A wait's answer when the transaction's nonce was used by another transaction: its bytes can never be mined. */
const DISPLACED = Symbol("displaced");
/** A receipt lookup the node did not answer. */
const UNKNOWN = Symbol("unknown");

/** One settle request's chain side. */
export class EvmSettlement implements ChainAdapter {
  /** A reverted transfer is tried again at most once per settle request, and never while collecting. */
  private transferRetried = false;

  constructor(
    private readonly rt: NetworkRuntime,
    private readonly cfg: SettleConfig,
    private readonly p: EvmPayment,
  ) {}

  isRecordedPayment(entry: LedgerEntry): boolean {
    return isRecordedCall(this.rt, this.p, entry);
  }

  /**
   * A failed payment may be tried again when its funds never moved and the handler allows it. Its
   * recorded bytes are looked up first: a node that lost sight of a transaction it later mined must
   * not make us transfer a second time.
   */
  async afterFailure(entry: LedgerEntry): Promise<"retry" | ChainOutcome | undefined> {
    if (!mayTryAgain(this.rt.handler, entry)) return undefined;
    const raw = entry.rawTransaction as Hex | undefined;
    const mined = raw ? await getReceipt(this.rt.chain.client, keccak256(raw)).catch(() => null) : null;
    return mined?.status === "success" ? this.outcomeOf(mined) : "retry";
  }

  send(held: HeldPayment): Promise<ChainOutcome> {
    const { rt, cfg, p } = this;
    // Recorded under the claim like any outcome, so a later settle of it is a duplicate, not a new charge.
    if (rt.handler.nothingToSend?.(p)) return Promise.resolve({ kind: "success", transaction: "" });
    return rt.pool.withSigner(async (signer) => {
      const [checked, fees] = await Promise.all([
        rt.handler.checkOnChain(rt.chain, p, signer.address, { estimateGas: true, recorded: held.entry }),
        rt.fees.quote(),
      ]);
      const capped = checked.ok ? capPlan(cfg, rt.handler.settleCall(p), checked.value, fees) : checked;
      if (!capped.ok) return { kind: "refused", rejection: capped.rejection };
      return this.broadcast(held, signer, capped.value);
    }, rt.handler.settler?.(p));
  }

  /** A broadcast whose outcome nobody saw (pending answered, or its holder's lease ran out). */
  async reconcile(held: HeldPayment, { collecting }: { collecting: boolean }): Promise<ChainOutcome> {
    const { rt, cfg } = this;
    if (collecting) this.transferRetried = true; // nothing new is signed for nobody
    const raw = held.entry.rawTransaction as Hex | undefined;
    const hash = held.entry.transaction as Hash | undefined;
    if (!raw || !hash) return { kind: "failed", rejection: reject(Reason.invalidTransactionState, "ledger entry in broadcast state without a transaction"), transaction: "" };
    const signer = rt.pool.byAddress(await recoverTransactionAddress({ serializedTransaction: raw as never }));
    const nonce = parseTransaction(raw).nonce!;

    const mined = await getReceipt(rt.chain.client, hash).catch(() => null);
    if (mined) return this.outcomeOf(mined, held, signer, nonce);
    await this.resendPrior(held.entry, signer);
    const sent = await sendRawTransaction(rt.chain.client, raw);
    if (sent.kind === "nonceTooLow") {
      const receipt = await waitForReceipt(rt.chain.client, hash, { timeoutMs: Math.min(cfg.receiptTimeoutMs, 2000), pollingIntervalMs: cfg.pollingIntervalMs });
      if (receipt) return this.outcomeOf(receipt, held, signer, nonce);
      signer?.settled(nonce);
      return this.neverMined(hash);
    }
    if (signer && sent.kind !== "rejected") signer.track({ hash, raw, nonce });
    const outcome = await this.awaitOutcome(held, hash, signer, nonce);
    if (outcome !== DISPLACED) return outcome;
    signer?.settled(nonce);
    return this.neverMined(hash);
  }

  private neverMined(hash: Hash): ChainOutcome {
    return { kind: "failed", rejection: reject(Reason.evmTransactionFailed, `transaction ${hash} can never be mined: another transaction used its nonce`), transaction: "" };
  }

  private async broadcast(held: HeldPayment, signer: EvmSigner, plan: TxPlan): Promise<ChainOutcome> {
    const { rt } = this;
    const refused = (message: string): ChainOutcome => ({ kind: "failed", rejection: reject(Reason.unexpectedSettle, message), transaction: "" });
    let prior = plan.prior;
    let foreign = plan.foreign;
    for (let attempt = 0; ; attempt++) {
      const first = await signer.nonces.acquire(prior.length + 1);
      const priorTxs: SignedTx[] = [];
      for (const [i, call] of prior.entries()) priorTxs.push(await signer.sign(call, plan.fees, first + i));
      const tx = await signer.sign(plan.main, plan.fees, first + prior.length);
      const recorded = await held
        .record({
          transaction: tx.hash,
          rawTransaction: tx.raw,
          priorTransactions: priorTxs.length || foreign ? recordedPrior(priorTxs, foreign) : undefined,
        })
        .catch(async (e: unknown) => {
          // The store failed (the write may or may not be stored) and nothing was sent: free the nonces,
          // or the signer would wait for them forever. Should the record exist, a reconcile re-sends its
          // bytes and, their nonce reused, records the payment failed: the funds never move twice.
          await abandonFrom(signer, [...priorTxs, tx]);
          throw e;
        });
      if (!recorded) {
        await abandonFrom(signer, [...priorTxs, tx]);
        return { kind: "lost" };
      }

      const priorSent = await this.sendPrior(signer, priorTxs, tx);
      if (priorSent.kind === "taken") {
        // Another transaction holds a prior call's nonce: sign the unsent calls again at fresh nonces.
        prior = prior.slice(priorSent.index);
        if (attempt < MAX_NONCE_RETRIES) {
          await signer.nonces.resync();
          continue;
        }
        return refused(`the node refused the settlement transactions: ${priorSent.message}`);
      }
      if (priorSent.kind === "rejected") return refused(`the node refused the transaction before the transfer: ${priorSent.message}`);
      // Whatever happens to the transfer from here on, the prior calls are out: never sign them again.
      prior = [];
      if (foreign) {
        const failed = await this.sendForeign(foreign, priorTxs);
        if (failed) {
          await signer.abandon(tx.nonce); // the transfer was never sent
          return { kind: "failed", rejection: failed, transaction: "" };
        }
        foreign = undefined;
      }

      signer.track(tx);
      const sent = await sendRawTransaction(rt.chain.client, tx.raw);
      if (sent.kind === "nonceTooLow" || sent.kind === "nonceTaken") {
        // Mined already (a retried send that did get through), or another transaction has our nonce
        // (the key is used elsewhere): our bytes can never be mined, so sign again at a fresh nonce.
        const receipt = sent.kind === "nonceTooLow" ? await getReceipt(rt.chain.client, tx.hash).catch((): typeof UNKNOWN => UNKNOWN) : null;
        // The node would not say whether ours is the one mined: signing anew could hide a payment made.
        if (receipt === UNKNOWN) return { kind: "pending", transaction: tx.hash, why: "the node did not say whether it was mined" };
        if (receipt) return this.outcomeOf(receipt, held, signer, tx.nonce);
        signer.settled(tx.nonce);
        if (attempt < MAX_NONCE_RETRIES) {
          await signer.nonces.resync();
          continue;
        }
        return refused(`the node refused the settlement transaction: ${sent.message}`);
      }
      if (sent.kind === "rejected") {
        // Never entered the pool: free its nonce (reuse or fill), and record the payment as failed.
        await signer.abandon(tx.nonce);
        return refused(`the node refused the settlement transaction: ${sent.message}`);
      }
      // accepted, or unreachable after retries: the bytes are recorded and tracked; the receipt decides.
      const outcome = await this.awaitOutcome(held, tx.hash, signer, tx.nonce);
      if (outcome !== DISPLACED) return outcome;
      // Another transaction of this key (a process sharing it) took the nonce: sign again at a fresh one.
      signer.settled(tx.nonce);
      if (attempt < MAX_NONCE_RETRIES) {
        await signer.nonces.resync();
        continue;
      }
      return refused(`transaction ${tx.hash} can never be mined: another transaction used its nonce`);
    }
  }

  /**
   * Sends the prior calls in nonce order. When one cannot enter the pool, the nonces from it up to the
   * transfer's are freed (nothing after it was sent), so the caller can sign again or give up.
   */
  private async sendPrior(signer: EvmSigner, priorTxs: SignedTx[], main: SignedTx): Promise<PriorSent> {
    const { client } = this.rt.chain;
    for (const [index, p] of priorTxs.entries()) {
      signer.track(p);
      const sent = await sendRawTransaction(client, p.raw);
      if (sent.kind === "accepted" || sent.kind === "unreachable") continue;
      if (sent.kind === "nonceTooLow" && (await getReceipt(client, p.hash).catch(() => null))) continue; // mined already
      const later = [...priorTxs.slice(index + 1), main];
      if (sent.kind === "rejected") {
        await abandonFrom(signer, [p, ...later]);
        return { kind: "rejected", index, message: sent.message };
      }
      signer.settled(p.nonce); // someone else's transaction has this nonce
      await abandonFrom(signer, later);
      return { kind: "taken", index, message: sent.message };
    }
    return { kind: "sent" };
  }

  /**
   * The payer's own transaction (its approve), once our prior calls (its gas money) are mined: sent and
   * waited for. Undefined once it is mined and succeeded; otherwise why the transfer is not sent.
   */
  private async sendForeign(raw: Hex, priorTxs: SignedTx[]): Promise<Rejection | undefined> {
    const { rt, cfg } = this;
    const wait = (hash: Hash) => waitForReceipt(rt.chain.client, hash, { timeoutMs: cfg.receiptTimeoutMs, pollingIntervalMs: cfg.pollingIntervalMs });
    for (const p of priorTxs) {
      const funded = await wait(p.hash);
      if (funded?.status !== "success") return reject(Reason.erc20ApprovalTxFailed, `the payer's gas money (transaction ${p.hash}) was not mined in time; its approval was not sent`);
      // What the payer was given is spent on its behalf: counted with the gas.
      cfg.onGasSpent?.(rt.network, (parseTransaction(p.raw).value ?? 0n) + funded.gasUsed * (funded.effectiveGasPrice ?? 0n));
    }
    const hash = keccak256(raw);
    const sent = await sendRawTransaction(rt.chain.client, raw);
    if (sent.kind === "rejected" || sent.kind === "nonceTaken") return reject(Reason.erc20ApprovalTxFailed, `the node refused the payer's approval: ${sent.message}`);
    const receipt = await wait(hash);
    if (!receipt) return reject(Reason.erc20ApprovalTxFailed, `the payer's approval ${hash} was not mined in time (its nonce may be used by another of its transactions)`);
    if (receipt.status !== "success") return reject(Reason.erc20ApprovalTxFailed, `the payer's approval ${hash} reverted`);
    return undefined;
  }

  /**
   * The recorded prior calls that are not mined go out again, byte for byte, ahead of the transfer.
   * A payer's own transaction among them is re-sent too, never tracked as one of ours.
   */
  private async resendPrior(entry: LedgerEntry, signer: EvmSigner | undefined): Promise<void> {
    const { client } = this.rt.chain;
    for (const p of entry.priorTransactions ?? []) {
      if (await getReceipt(client, p.transaction as Hash).catch(() => null)) continue;
      const raw = p.rawTransaction as Hex;
      const sent = await sendRawTransaction(client, raw);
      if (signer && !p.foreign && (sent.kind === "accepted" || sent.kind === "unreachable")) signer.track({ hash: p.transaction as Hash, raw, nonce: parseTransaction(raw).nonce! });
    }
  }

  private async awaitOutcome(held: HeldPayment, hash: Hash, signer: EvmSigner | undefined, nonce: number): Promise<ChainOutcome | typeof DISPLACED> {
    const { rt, cfg } = this;
    let displaced = false;
    const receipt = await waitForReceipt(rt.chain.client, hash, {
      timeoutMs: cfg.receiptTimeoutMs,
      pollingIntervalMs: cfg.pollingIntervalMs,
      stallCheckMs: cfg.stallCheckMs,
      onStall: signer ? () => signer.repair() : undefined,
      givesUp: signer ? async () => (displaced = await this.nonceUsedByAnother(signer, hash, nonce)) : undefined,
    });
    if (receipt) return this.outcomeOf(receipt, held, signer, nonce);
    if (displaced) return DISPLACED;
    return { kind: "pending", transaction: hash, why: `not mined within ${cfg.receiptTimeoutMs} ms` };
  }

  /**
   * True when the chain has mined `nonce` of this signer and `hash` is not what it mined: another
   * transaction of the same key took the nonce (another process sharing the key, whose transaction
   * displaced ours in the pool). The count is read first, so a receipt of ours mined meanwhile is seen.
   */
  private async nonceUsedByAnother(signer: EvmSigner, hash: Hash, nonce: number): Promise<boolean> {
    const { client } = this.rt.chain;
    const mined = await client.getTransactionCount({ address: signer.address, blockTag: "latest" });
    return mined > nonce && (await getReceipt(client, hash)) === null;
  }

  /** What a mined transaction means for the payment; a revert is followed by one new transfer when the chain now allows it. */
  private async outcomeOf(receipt: TransactionReceipt, held?: HeldPayment, signer?: EvmSigner, nonce?: number): Promise<ChainOutcome> {
    if (signer && nonce !== undefined) signer.minedThrough(nonce);
    const hash = receipt.transactionHash;
    // The writer that records the outcome counts its gas, reverts included; a node that leaves
    // effectiveGasPrice out (viem then gives null) counts nothing.
    const onRecorded = () => {
      if (receipt.effectiveGasPrice != null) this.cfg.onGasSpent?.(this.rt.network, receipt.gasUsed * receipt.effectiveGasPrice);
    };
    if (receipt.status === "success") {
      const rejection = this.rt.handler.checkReceipt(receipt, this.p);
      if (rejection) return { kind: "failed", rejection, transaction: hash, onRecorded };
      return { kind: "success", transaction: hash, onRecorded };
    }
    await markContractPayerReverted(this.rt, this.cfg, this.p, hash, () => this.wouldPassNow(held)).catch(() => undefined);
    const retry = held && signer ? await this.retryTransfer(held, signer) : undefined;
    if (retry && typeof retry !== "string") {
      // The reverted transaction's gas is counted with whatever the new transfer comes to.
      if (retry.kind !== "success" && retry.kind !== "failed") return retry;
      const counted = retry.onRecorded;
      return { ...retry, onRecorded: () => (onRecorded(), counted?.()) };
    }
    const rejection = reject(Reason.evmTransactionFailed, `settlement transaction ${hash} reverted${retry ? `; not tried again: ${retry}` : ""}`);
    return { kind: "failed", rejection, transaction: hash, onRecorded };
  }

  /** True when the chain's checks say this payment would go through now (so a revert was not the chain's doing). */
  private async wouldPassNow(held: HeldPayment | undefined): Promise<boolean> {
    const settler = this.rt.handler.settler?.(this.p) ?? this.rt.pool.addresses[0]!;
    const checked = await this.rt.handler.checkOnChain(this.rt.chain, this.p, settler, { estimateGas: false, recorded: held?.entry });
    return checked.ok;
  }

  /**
   * The transfer reverted while its prior calls (a permit) may have done their part: when the chain now
   * shows the transfer can go through with no prior call, send a new transfer (never a prior call again).
   * Returns the outcome, or why it was not tried (undefined when the handler does not retry).
   */
  private async retryTransfer(held: HeldPayment, signer: EvmSigner): Promise<ChainOutcome | string | undefined> {
    const { rt, cfg, p } = this;
    if (!rt.handler.retriesFailedTransfer || this.transferRetried) return undefined;
    this.transferRetried = true;
    try {
      const [checked, fees] = await Promise.all([rt.handler.checkOnChain(rt.chain, p, signer.address, { estimateGas: true, recorded: held.entry }), rt.fees.quote()]);
      if (!checked.ok) return checked.rejection.message;
      if (checked.value.prior?.length) return "the calls before the transfer did not take effect";
      const capped = capPlan(cfg, rt.handler.settleCall(p), checked.value, fees);
      if (!capped.ok) return capped.rejection.message;
      return await this.broadcast(held, signer, capped.value);
    } catch (e) {
      return `chain reads failed: ${nodeMessage(e)}`;
    }
  }
}

/** What the ledger keeps of the calls before the transfer: ours, then the payer's own transaction. */
function recordedPrior(ours: SignedTx[], foreign: Hex | undefined) {
  const recorded = ours.map((t) => ({ transaction: t.hash as string, rawTransaction: t.raw as string, foreign: undefined as boolean | undefined }));
  if (foreign) recorded.push({ transaction: keccak256(foreign), rawTransaction: foreign, foreign: true });
  return recorded;
}

/** Frees unsent nonces, highest first, so each can be taken back instead of leaving holes. */
async function abandonFrom(signer: EvmSigner, txs: SignedTx[]): Promise<void> {
  for (const t of [...txs].reverse()) await signer.abandon(t.nonce);
}
