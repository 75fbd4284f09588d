/**
 * Settlement with the ledger: one success per payment, nothing broadcast twice.
 *
 * Ledger states of a payment key: absent -> claimed (lease) -> broadcast (hash + signed bytes recorded
 * BEFORE sending) -> success | failed. Every write is a compare-and-set on the entry's version, so of
 * any number of concurrent callers exactly one moves an entry on; only the caller whose write turned
 * the entry into `success` answers success:true. A broadcast whose receipt did not come in time is
 * answered `settlement_pending`; the next settle reconciles it against the recorded hash, re-sending
 * the very same bytes if the node lost them (same hash: it can execute at most once).
 *
 * A payment may need calls before the one that moves the funds (ERC-2612: `permit`, then `transferFrom`).
 * They are signed at consecutive nonces of one signer and recorded together (`priorTransactions`)
 * before the first is sent; `transaction` is always the funds-moving one, whose receipt decides.
 *
 * Leases. A `claimed` or `broadcast` entry carries a short lease (`leaseMs`, default 5 s) that its holder
 * renews every leaseMs/3 for as long as it works, however long the receipt takes (core's HeldEntry).
 * While it is live, other settles answer `duplicate_settlement`. Once it has run out the holder is taken
 * for dead, and the next settle takes the payment over, so a crash frees a payment within about a lease:
 *  - a `claimed` entry had nothing sent (bytes are recorded before sending): it is settled afresh;
 *  - a `broadcast` entry is reconciled from its recorded bytes: same hash, re-sent as is, never re-signed.
 * A live holder loses its lease only if none of its renewals lands for two thirds of a lease (3.3 s by
 * default; with 750 settles in flight the event loop stalled at most 0.5 s, bench/tools/lease-renewals.ts)
 * or the hosts' clocks disagree by as much. Then the takeover has moved the version on, so the holder's
 * next write (a renewal at the latest) loses and it writes nothing more: it can record no new bytes,
 * hence send none (it only ever sends recorded bytes, which the new holder re-sends too), and it answers
 * from what the new holder records, never success. Both wait on one transaction, so both see the same
 * outcome, and one records it.
 */
import { bindingOf, checkBinding, HeldEntry, Reason, reject, storedRequest, type LedgerEntry, type NetworkInfo, type PaymentRequest, type ReasonCode, type Rejection, type SettleOutcome, type SettlementLedger } from "@facilitator/core";
import { keccak256, parseTransaction, recoverTransactionAddress, type Hash, type Hex, type TransactionReceipt } from "viem";
import { checkPayerSignature } from "./erc1271.ts";
import { capFees, feeCeiling, type FeeOracle, type FeeQuote } from "./fees.ts";
import { getReceipt, waitForReceipt } from "./receipt.ts";
import { nodeMessage } from "./rpc-errors.ts";
import { sendRawTransaction } from "./send.ts";
import type { EvmSigner, SignedTx, SignerPool, TxRequest } from "./signer-pool.ts";
import type { CheckResult, EvmChainContext, EvmPayment, OnChainCheck, TransferMethodHandler } from "./transfer-method.ts";

/** Everything settlement needs about one network. */
export interface NetworkRuntime {
  network: NetworkInfo;
  chain: EvmChainContext;
  handler: TransferMethodHandler;
  pool: SignerPool;
  fees: FeeOracle;
}

export interface SettleConfig {
  ledger: SettlementLedger;
  receiptTimeoutMs: number;
  pollingIntervalMs: number;
  stallCheckMs: number;
  /** Lease of a claim or broadcast: renewed every leaseMs/3 by its holder; once run out, another settle may take it over. */
  leaseMs: number;
  /** Gas limit = estimate x this / 100, at most `maxGas`. */
  gasMarginPercent: bigint;
  /** No settlement transaction may need more gas than this: a simulation above it is refused before anything is signed. */
  maxGas: bigint;
  /** No settlement transaction pays more per gas than this: while the chain asks more, nothing is signed. */
  maxFeePerGas: bigint;
  now(): number;
  /** Told what each mined settlement transaction cost (gas used x effective price), once. */
  onGasSpent?: (network: NetworkInfo, wei: bigint) => void;
}

type Ctx = {
  rt: NetworkRuntime;
  cfg: SettleConfig;
  payment: EvmPayment;
  request: PaymentRequest;
  /** The ledger entry this settle holds, once it claimed the payment or took it over. */
  held?: HeldEntry;
  /** The hash this settle recorded (or reconciles), once there is one: from then on the chain decides. */
  hash?: Hash;
  /** A reverted transfer is tried again at most once per settle request. */
  transferRetried?: boolean;
  /** Collecting a broadcast nobody came back for: nothing new is signed, and a success is kept for the next caller. */
  collecting?: boolean;
  /** The entry an earlier attempt of this payment left, when this settle took it over to try again. */
  recorded?: LedgerEntry;
};

/** What one broadcast sends: `prior` calls first, at the nonces just below `main`'s. */
type TxPlan = { main: TxRequest; prior: TxRequest[]; fees: FeeQuote };

/** Re-signs at a fresh nonce when another transaction took ours (the key used by another process, which
 * can take it again while both race for the next nonces). */
const MAX_NONCE_RETRIES = 8;

export async function settlePayment(rt: NetworkRuntime, cfg: SettleConfig, request: PaymentRequest): Promise<SettleOutcome> {
  const parsed = rt.handler.parse(request);
  if (!parsed.ok) return failure(parsed.rejection, "", parsed.payer);
  const ctx: Ctx = { rt, cfg, payment: parsed.value, request };
  return guarded(ctx, async () => {
    // Nobody may claim a payment's key, not even for a moment, without the payer's proven signature.
    const unsigned = await checkPayerSignature(rt.chain.client, ctx.payment);
    if (unsigned) return failure(unsigned, "", ctx.payment.payer);
    const entry = await cfg.ledger.get(ctx.payment.ledgerKey);
    return entry ? await fromEntry(ctx, entry) : await settleFresh(ctx, 0);
  });
}

/**
 * The outcome of a broadcast nobody came back for, if its entry is still at `version`: the reconcile
 * path alone, with the reverted-transfer retry ruled out, so nothing new is ever signed here.
 */
export async function collectPayment(rt: NetworkRuntime, cfg: SettleConfig, request: PaymentRequest, version: number): Promise<SettleOutcome | undefined> {
  const parsed = rt.handler.parse(request);
  if (!parsed.ok) return undefined;
  const ctx: Ctx = { rt, cfg, payment: parsed.value, request, transferRetried: true, collecting: true };
  const entry = await cfg.ledger.get(ctx.payment.ledgerKey);
  if (entry?.state !== "broadcast" || entry.version !== version) return undefined;
  if (!entry.pendingAnswered && (entry.leaseUntil ?? 0) > cfg.now()) return undefined; // its settle is still at work
  return guarded(ctx, () => reconcile(ctx, entry));
}

async function guarded(ctx: Ctx, work: () => Promise<SettleOutcome>): Promise<SettleOutcome> {
  const { cfg } = ctx;
  try {
    return await work();
  } catch (e) {
    // Once bytes were recorded the outcome lives on chain: never report a failure the chain may contradict.
    if (ctx.hash) {
      await ctx.held?.end({ pendingAnswered: true, leaseUntil: cfg.now() }).catch(() => undefined);
      return pending(ctx, ctx.hash, `outcome not recorded (${nodeMessage(e)})`);
    }
    return failure(reject(Reason.unexpectedSettle, `settlement failed before anything was sent: ${nodeMessage(e)}`), "", ctx.payment.payer);
  } finally {
    ctx.held?.stop(); // whatever path ended the settle: a lease left behind runs out on its own
  }
}

const leaseOf = (cfg: SettleConfig) => ({ leaseMs: cfg.leaseMs, now: cfg.now });

function fromEntry(ctx: Ctx, entry: LedgerEntry): Promise<SettleOutcome> | SettleOutcome {
  const mismatch = checkBinding(entry, ctx.request);
  if (mismatch) return failure(mismatch, "", ctx.payment.payer);
  const leaseLive = (entry.leaseUntil ?? 0) > ctx.cfg.now();
  switch (entry.state) {
    case "success":
      return entry.successUnanswered ? answerCollectedSuccess(ctx, entry) : duplicate(ctx, `this payment was already settled in transaction ${entry.transaction}`, entry.transaction);
    case "failed":
      return mayTryAgain(ctx, entry) ? tryAgain(ctx, entry) : recordedFailure(ctx, entry);
    case "claimed":
      return leaseLive ? duplicate(ctx, "another request is settling this payment right now") : settleFresh(ctx, entry.version, entry);
    case "broadcast":
      if (!entry.pendingAnswered && leaseLive) {
        return duplicate(ctx, `another request is settling this payment right now (transaction ${entry.transaction})`, entry.transaction);
      }
      return reconcile(ctx, entry);
  }
}

/** Failures that moved no funds, for handlers whose next attempt is safe (the chain checks decide). */
const RETRYABLE_FAILURES: readonly string[] = [Reason.evmTransactionFailed, Reason.unexpectedSettle];

function mayTryAgain(ctx: Ctx, entry: LedgerEntry): boolean {
  return !!ctx.rt.handler.retriesFailedTransfer && RETRYABLE_FAILURES.includes(entry.reason ?? "");
}

/**
 * A new attempt at a payment whose last transfer failed. Its recorded bytes are looked up first: a
 * node that lost sight of a transaction it later mined must not make us transfer a second time.
 */
async function tryAgain(ctx: Ctx, entry: LedgerEntry): Promise<SettleOutcome> {
  const raw = entry.rawTransaction as Hex | undefined;
  const mined = raw ? await getReceipt(ctx.rt.chain.client, keccak256(raw)).catch(() => null) : null;
  if (mined?.status === "success") {
    ctx.held = new HeldEntry(ctx.cfg.ledger, entry, leaseOf(ctx.cfg)); // written once more, no lease needed
    return finish(ctx, mined);
  }
  return settleFresh(ctx, entry.version, entry);
}

/**
 * The transactions an on-chain check asks for, held under the operator's caps: a call needing more gas
 * than `maxGas`, or a chain asking more per gas than `maxFeePerGas`, is refused before anything is signed.
 */
export function capPlan(cfg: Pick<SettleConfig, "gasMarginPercent" | "maxGas" | "maxFeePerGas">, main: { to: Hex; data: Hex }, checked: OnChainCheck, quote: FeeQuote): CheckResult<TxPlan> {
  const calls = [...(checked.prior ?? []), { ...main, gas: checked.gas! }];
  const heavy = calls.find((c) => c.gas > cfg.maxGas);
  if (heavy) {
    return { ok: false, rejection: reject(Reason.evmGasLimitExceeded, `the settlement would need ${heavy.gas} gas, above this facilitator's cap of ${cfg.maxGas}`) };
  }
  const fees = capFees(quote, cfg.maxFeePerGas);
  if (!fees) {
    return { ok: false, rejection: reject(Reason.evmFeeCapExceeded, `the chain asks more per gas than this facilitator's cap of ${cfg.maxFeePerGas} wei (quote ${feeCeiling(quote)}); try again later`) };
  }
  const limit = (gas: bigint) => [(gas * cfg.gasMarginPercent) / 100n, cfg.maxGas].reduce((a, b) => (a < b ? a : b));
  const sized = calls.map((c) => ({ to: c.to, data: c.data, gas: limit(c.gas) }));
  return { ok: true, value: { main: sized.at(-1)!, prior: sized.slice(0, -1), fees } };
}

/** Absent (expectedVersion 0), an abandoned claim or a retryable failure: claim it, check it on chain, sign, record, send. */
async function settleFresh(ctx: Ctx, expectedVersion: number, recorded?: LedgerEntry): Promise<SettleOutcome> {
  const { rt, cfg, payment: p } = ctx;
  ctx.recorded = recorded;
  const late = rt.handler.checkTime(p, BigInt(Math.floor(cfg.now() / 1000)));
  if (late) return failure(late, "", p.payer);
  const held = await HeldEntry.take(
    cfg.ledger,
    {
      key: p.ledgerKey, state: "claimed", network: rt.network.caip2, payer: p.payer, amount: p.amount.toString(),
      keepUntil: rt.handler.keepRecordUntil?.(p),
      binding: bindingOf(ctx.request),
      // What an earlier attempt of this payment sent (a permit) stays on record: it decides what may be skipped.
      priorTransactions: recorded?.priorTransactions,
      rawTransaction: recorded?.rawTransaction,
      request: storedRequest(ctx.request),
    },
    expectedVersion,
    leaseOf(cfg),
  );
  if (!held) return duplicate(ctx, "another request claimed this payment first");
  ctx.held = held;

  return rt.pool.withSigner(async (signer) => {
    let plan: TxPlan;
    try {
      const [checked, fees] = await Promise.all([rt.handler.checkOnChain(rt.chain, p, signer.address, { estimateGas: true, recorded }), rt.fees.quote()]);
      const capped = checked.ok ? capPlan(cfg, rt.handler.settleCall(p), checked.value, fees) : checked;
      if (!capped.ok) {
        // Nothing was sent: free the payment (a stuck claim would also free itself when its lease ends).
        await giveBack(held, ctx).catch(() => undefined);
        return failure(capped.rejection, "", p.payer);
      }
      plan = capped.value;
    } catch (e) {
      await giveBack(held, ctx).catch(() => undefined);
      throw e;
    }
    return broadcast(ctx, held, signer, plan);
  }, rt.handler.settler?.(p));
}

/**
 * Frees a payment this settle claimed and sent nothing for: a fresh claim is removed; an entry an
 * earlier attempt recorded is written back as it was (its binding and what it sent stay on record).
 */
function giveBack(held: HeldEntry, ctx: Ctx): Promise<unknown> {
  if (!ctx.recorded) return held.release();
  const { state, reason, message, transaction } = ctx.recorded;
  return held.end({ state, reason, message, transaction, leaseUntil: undefined });
}

async function broadcast(ctx: Ctx, held: HeldEntry, signer: EvmSigner, plan: TxPlan): Promise<SettleOutcome> {
  const { rt } = ctx;
  let prior = plan.prior;
  for (let attempt = 0; ; attempt++) {
    let first: number;
    try {
      first = await signer.nonces.acquire(prior.length + 1);
    } catch (e) {
      if (held.entry.state === "claimed") await giveBack(held, ctx).catch(() => undefined);
      throw e;
    }
    const priorTxs: SignedTx[] = [];
    for (const [i, call] of prior.entries()) priorTxs.push(await signer.sign(call, plan.fees, first + i));
    const tx = await signer.sign(plan.main, plan.fees, first + prior.length);
    const recorded = await held
      .write({
        state: "broadcast",
        transaction: tx.hash,
        rawTransaction: tx.raw,
        priorTransactions: priorTxs.length ? priorTxs.map((t) => ({ transaction: t.hash, rawTransaction: t.raw })) : held.entry.priorTransactions,
        pendingAnswered: undefined,
      })
      .catch(async (e: unknown) => {
        // The store failed (the write may or may not be stored) and nothing was sent: free the nonces,
        // or the signer would wait for them forever. Should the record exist, a reconcile re-sends its
        // bytes and, their nonce reused, records the payment failed: the funds never move twice.
        await abandonFrom(signer, [...priorTxs, tx], 0);
        throw e;
      });
    if (!recorded) {
      await abandonFrom(signer, [...priorTxs, tx], 0);
      return answerFromLedger(ctx, ctx.hash ?? "");
    }
    ctx.hash = tx.hash;

    const priorSent = await sendPrior(rt, signer, priorTxs, tx);
    if (priorSent.kind === "taken") {
      // Another transaction holds a prior call's nonce: sign the unsent calls again at fresh nonces.
      prior = prior.slice(priorSent.index);
      if (attempt < MAX_NONCE_RETRIES) {
        await signer.nonces.resync();
        continue;
      }
      return recordFailure(ctx, reject(Reason.unexpectedSettle, `the node refused the settlement transactions: ${priorSent.message}`), "");
    }
    if (priorSent.kind === "rejected") {
      return recordFailure(ctx, reject(Reason.unexpectedSettle, `the node refused the transaction before the transfer: ${priorSent.message}`), "");
    }
    // Whatever happens to the transfer from here on, the prior calls are out: never sign them again.
    prior = [];

    signer.track(tx);
    const sent = await sendRawTransaction(rt.chain.client, tx.raw);
    if (sent.kind === "nonceTooLow" || sent.kind === "nonceTaken") {
      // Mined already (a retried send that did get through), or another transaction has our nonce
      // (the key is used elsewhere): our bytes can never be mined, so sign again at a fresh nonce.
      const receipt = sent.kind === "nonceTooLow" ? await getReceipt(rt.chain.client, tx.hash).catch(() => null) : null;
      if (receipt) return finish(ctx, receipt, signer, tx.nonce);
      signer.settled(tx.nonce);
      if (attempt < MAX_NONCE_RETRIES) {
        await signer.nonces.resync();
        continue;
      }
      return recordFailure(ctx, reject(Reason.unexpectedSettle, `the node refused the settlement transaction: ${sent.message}`), "");
    }
    if (sent.kind === "rejected") {
      // Never entered the pool: free its nonce (reuse or fill), and record the payment as failed.
      await signer.abandon(tx.nonce);
      return recordFailure(ctx, reject(Reason.unexpectedSettle, `the node refused the settlement transaction: ${sent.message}`), "");
    }
    // accepted, or unreachable after retries: the bytes are recorded and tracked; the receipt decides.
    const outcome = await awaitOutcome(ctx, tx.hash, signer, tx.nonce);
    if (outcome !== DISPLACED) return outcome;
    // Another transaction of this key (a process sharing it) took the nonce: sign again at a fresh one.
    signer.settled(tx.nonce);
    if (attempt < MAX_NONCE_RETRIES) {
      await signer.nonces.resync();
      continue;
    }
    return recordFailure(ctx, reject(Reason.unexpectedSettle, `transaction ${tx.hash} can never be mined: another transaction used its nonce`), "");
  }
}

type PriorSent = { kind: "sent" } | { kind: "taken" | "rejected"; index: number; message: string };

/**
 * Sends the prior calls in nonce order. When one cannot enter the pool, the nonces from it up to the
 * transfer's are freed (nothing after it was sent), so the caller can sign again or give up.
 */
async function sendPrior(rt: NetworkRuntime, signer: EvmSigner, priorTxs: SignedTx[], main: SignedTx): Promise<PriorSent> {
  for (const [index, p] of priorTxs.entries()) {
    signer.track(p);
    const sent = await sendRawTransaction(rt.chain.client, p.raw);
    if (sent.kind === "accepted" || sent.kind === "unreachable") continue;
    if (sent.kind === "nonceTooLow" && (await getReceipt(rt.chain.client, p.hash).catch(() => null))) continue; // mined already
    const later = [...priorTxs.slice(index + 1), main];
    if (sent.kind === "rejected") {
      await abandonFrom(signer, [p, ...later], 0);
      return { kind: "rejected", index, message: sent.message };
    }
    signer.settled(p.nonce); // someone else's transaction has this nonce
    await abandonFrom(signer, later, 0);
    return { kind: "taken", index, message: sent.message };
  }
  return { kind: "sent" };
}

/** Frees unsent nonces, highest first, so each can be taken back instead of leaving holes. */
async function abandonFrom(signer: EvmSigner, txs: SignedTx[], from: number): Promise<void> {
  for (const t of txs.slice(from).reverse()) await signer.abandon(t.nonce);
}

/** A broadcast whose outcome nobody saw (pending answered, or its holder's lease ran out). */
async function reconcile(ctx: Ctx, entry: LedgerEntry): Promise<SettleOutcome> {
  const { rt, cfg } = ctx;
  const raw = entry.rawTransaction as Hex | undefined;
  const hash = entry.transaction as Hash | undefined;
  if (!raw || !hash) return failure(reject(Reason.invalidTransactionState, "ledger entry in broadcast state without a transaction"), "", ctx.payment.payer);
  // Only a retry of the very same payment may collect its outcome: same target, same calldata.
  if (!isRecordedCall(ctx, raw)) return duplicate(ctx, `a different authorization with this payment's nonce was sent in transaction ${hash}`, hash);
  const recordedTx = parseTransaction(raw);
  const { version: _version, leaseUntil: _lease, updatedAt: _updated, ...recorded } = entry;
  const held = await HeldEntry.take(cfg.ledger, { ...recorded, pendingAnswered: undefined }, entry.version, leaseOf(cfg));
  if (!held) return duplicate(ctx, `another request is settling this payment right now (transaction ${hash})`, hash);
  ctx.held = held;
  ctx.hash = hash;
  const signer = rt.pool.byAddress(await recoverTransactionAddress({ serializedTransaction: raw as never }));
  const nonce = recordedTx.nonce!;

  const mined = await getReceipt(rt.chain.client, hash).catch(() => null);
  if (mined) return finish(ctx, mined, signer, nonce);
  await resendPrior(rt, entry, signer);
  const sent = await sendRawTransaction(rt.chain.client, raw);
  if (sent.kind === "nonceTooLow") {
    const receipt = await waitForReceipt(rt.chain.client, hash, { timeoutMs: Math.min(cfg.receiptTimeoutMs, 2000), pollingIntervalMs: cfg.pollingIntervalMs });
    if (receipt) return finish(ctx, receipt, signer, nonce);
    signer?.settled(nonce);
    return recordFailure(
      ctx,
      reject(Reason.evmTransactionFailed, `transaction ${hash} can never be mined: another transaction used its nonce`),
      "",
    );
  }
  if (signer && sent.kind !== "rejected") signer.track({ hash, raw, nonce });
  const outcome = await awaitOutcome(ctx, hash, signer, nonce);
  if (outcome !== DISPLACED) return outcome;
  signer?.settled(nonce);
  return recordFailure(ctx, reject(Reason.evmTransactionFailed, `transaction ${hash} can never be mined: another transaction used its nonce`), "");
}

/** True when `raw` is the transaction this request's payment would send: same target, same calldata. */
function isRecordedCall(ctx: Ctx, raw: Hex | undefined): boolean {
  if (!raw) return false;
  const recorded = parseTransaction(raw);
  const call = ctx.rt.handler.settleCall(ctx.payment);
  return recorded.to?.toLowerCase() === call.to.toLowerCase() && recorded.data?.toLowerCase() === call.data.toLowerCase();
}

/** The recorded prior calls that are not mined go out again, byte for byte, ahead of the transfer. */
async function resendPrior(rt: NetworkRuntime, entry: LedgerEntry, signer: EvmSigner | undefined): Promise<void> {
  for (const p of entry.priorTransactions ?? []) {
    if (await getReceipt(rt.chain.client, p.transaction as Hash).catch(() => null)) continue;
    const raw = p.rawTransaction as Hex;
    const sent = await sendRawTransaction(rt.chain.client, raw);
    if (signer && (sent.kind === "accepted" || sent.kind === "unreachable")) signer.track({ hash: p.transaction as Hash, raw, nonce: parseTransaction(raw).nonce! });
  }
}

/** A wait's answer when the transaction's nonce was used by another transaction: its bytes can never be mined. */
const DISPLACED = Symbol("displaced");

async function awaitOutcome(ctx: Ctx, hash: Hash, signer: EvmSigner | undefined, nonce: number): Promise<SettleOutcome | typeof DISPLACED> {
  const { rt, cfg } = ctx;
  let displaced = false;
  const receipt = await waitForReceipt(rt.chain.client, hash, {
    timeoutMs: cfg.receiptTimeoutMs,
    pollingIntervalMs: cfg.pollingIntervalMs,
    stallCheckMs: cfg.stallCheckMs,
    onStall: signer ? () => signer.repair() : undefined,
    givesUp: signer ? async () => (displaced = await nonceUsedByAnother(rt, signer, hash, nonce)) : undefined,
  });
  if (receipt) return finish(ctx, receipt, signer, nonce);
  if (displaced) return DISPLACED;
  // Lease released with the answer: the caller's retry reconciles at once.
  await ctx.held!.end({ pendingAnswered: true, leaseUntil: cfg.now() });
  return pending(ctx, hash, `not mined within ${cfg.receiptTimeoutMs} ms`);
}

/**
 * True when the chain has mined `nonce` of this signer and `hash` is not what it mined: another
 * transaction of the same key took the nonce (another process sharing the key, whose transaction
 * displaced ours in the pool). The count is read first, so a receipt of ours mined meanwhile is seen.
 */
async function nonceUsedByAnother(rt: NetworkRuntime, signer: EvmSigner, hash: Hash, nonce: number): Promise<boolean> {
  const mined = await rt.chain.client.getTransactionCount({ address: signer.address, blockTag: "latest" });
  return mined > nonce && (await getReceipt(rt.chain.client, hash)) === null;
}

/** Records the mined outcome; only the writer that turns the entry into `success` answers success. */
async function finish(ctx: Ctx, receipt: TransactionReceipt, signer?: EvmSigner, nonce?: number): Promise<SettleOutcome> {
  if (signer && nonce !== undefined) signer.minedThrough(nonce);
  const hash = receipt.transactionHash;
  let rejection: Rejection | undefined;
  if (receipt.status === "success") {
    rejection = ctx.rt.handler.checkReceipt(receipt, ctx.payment);
  } else {
    const retry = signer ? await retryTransfer(ctx, signer) : undefined;
    if (retry && typeof retry !== "string") return retry;
    rejection = reject(Reason.evmTransactionFailed, `settlement transaction ${hash} reverted${retry ? `; not tried again: ${retry}` : ""}`);
  }
  if (rejection) return recordFailure(ctx, rejection, hash);
  const stored = await ctx.held!.end({
    state: "success", transaction: hash, leaseUntil: undefined, pendingAnswered: undefined, reason: undefined, message: undefined, request: undefined,
    successUnanswered: ctx.collecting || undefined,
  });
  if (!stored) return answerFromLedger(ctx, hash);
  // The writer that won counts it; a node that leaves effectiveGasPrice out (viem then gives null) counts nothing.
  if (receipt.effectiveGasPrice != null) ctx.cfg.onGasSpent?.(ctx.rt.network, receipt.gasUsed * receipt.effectiveGasPrice);

  return { success: true, payer: ctx.payment.payer, transaction: hash, amount: ctx.payment.amount };
}

/**
 * The transfer reverted while its prior calls (a permit) may have done their part: when the chain now
 * shows the transfer can go through with no prior call, send a new transfer (never a prior call again).
 * Returns the outcome, or why it was not tried (undefined when the handler does not retry).
 */
async function retryTransfer(ctx: Ctx, signer: EvmSigner): Promise<SettleOutcome | string | undefined> {
  const { rt, cfg, payment: p } = ctx;
  if (!rt.handler.retriesFailedTransfer || ctx.transferRetried) return undefined;
  ctx.transferRetried = true;
  try {
    const [checked, fees] = await Promise.all([rt.handler.checkOnChain(rt.chain, p, signer.address, { estimateGas: true, recorded: ctx.held!.entry }), rt.fees.quote()]);
    if (!checked.ok) return checked.rejection.message;
    if (checked.value.prior?.length) return "the calls before the transfer did not take effect";
    const capped = capPlan(cfg, rt.handler.settleCall(p), checked.value, fees);
    if (!capped.ok) return capped.rejection.message;
    return await broadcast(ctx, ctx.held!, signer, capped.value);
  } catch (e) {
    return `chain reads failed: ${nodeMessage(e)}`;
  }
}

/**
 * The one success answer of a payment the facilitator collected by itself: whoever clears the mark
 * gives it. Only to the very payment that was sent (same target and calldata, as for a reconcile):
 * the ledger key alone (payer and nonce) is public once the transfer is on chain.
 */
async function answerCollectedSuccess(ctx: Ctx, entry: LedgerEntry): Promise<SettleOutcome> {
  const already = () => duplicate(ctx, `this payment was already settled in transaction ${entry.transaction}`, entry.transaction);
  if (!isRecordedCall(ctx, entry.rawTransaction as Hex | undefined)) return already();
  const { version: _version, successUnanswered: _mark, ...rest } = entry;
  const cleared = await ctx.cfg.ledger.compareAndSet({ ...rest, updatedAt: ctx.cfg.now() }, entry.version);
  if (!cleared) return already();
  return { success: true, payer: ctx.payment.payer, transaction: entry.transaction!, amount: ctx.payment.amount };
}

async function recordFailure(ctx: Ctx, rejection: Rejection, transaction: string): Promise<SettleOutcome> {
  const stored = await ctx.held!.end({
    state: "failed",
    reason: rejection.reason,
    message: rejection.message,
    // Only a mined transaction is worth naming in the answer; the message names any other hash.
    transaction: transaction || undefined,
    leaseUntil: undefined,
    pendingAnswered: undefined,
    request: undefined,
  });
  if (!stored) return answerFromLedger(ctx, transaction);
  return failure(rejection, transaction, ctx.payment.payer);
}

/**
 * Another settle wrote the entry while we worked (it took the payment over after our lease ran out):
 * answer from what it recorded, never success; it waits on the same transaction and records the outcome.
 */
async function answerFromLedger(ctx: Ctx, hash: string): Promise<SettleOutcome> {
  const now = await ctx.cfg.ledger.get(ctx.payment.ledgerKey);
  if (now?.state === "failed") return recordedFailure(ctx, now);
  if (now?.state === "success") return duplicate(ctx, `this payment was already settled in transaction ${now.transaction}`, now.transaction);
  return duplicate(ctx, "another request took this payment over and is settling it", now?.transaction ?? hash);
}

function recordedFailure(ctx: Ctx, entry: LedgerEntry): SettleOutcome {
  const rejection = reject((entry.reason as ReasonCode | undefined) ?? Reason.unexpectedSettle, entry.message ?? "this payment's settlement failed");
  return failure(rejection, entry.transaction ?? "", ctx.payment.payer);
}

function duplicate(ctx: Ctx, message: string, transaction?: string): SettleOutcome {
  return failure(reject(Reason.duplicateSettlement, message), transaction ?? "", ctx.payment.payer);
}

function pending(ctx: Ctx, hash: Hash, why: string): SettleOutcome {
  return failure(reject(Reason.settlementPending, `transaction ${hash} was sent; ${why}. Settle again to collect its outcome.`), hash, ctx.payment.payer);
}

function failure(rejection: Rejection, transaction: string, payer?: string): SettleOutcome {
  return { success: false, ...rejection, transaction, ...(payer ? { payer } : {}) };
}
