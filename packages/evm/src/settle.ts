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
 */
import { Reason, reject, type LedgerEntry, type NetworkInfo, type PaymentRequest, type ReasonCode, type Rejection, type SettleOutcome, type SettlementLedger } from "@facilitator/core";
import { keccak256, parseTransaction, recoverTransactionAddress, type Hash, type Hex, type TransactionReceipt } from "viem";
import type { FeeOracle, FeeQuote } from "./fees.ts";
import { getReceipt, waitForReceipt } from "./receipt.ts";
import { nodeMessage } from "./rpc-errors.ts";
import { sendRawTransaction } from "./send.ts";
import type { EvmSigner, SignedTx, SignerPool, TxRequest } from "./signer-pool.ts";
import type { EvmChainContext, EvmPayment, TransferMethodHandler } from "./transfer-method.ts";

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
  /** How long a claim or a broadcast is held before another caller may take it over. */
  leaseMs: number;
  /** Gas limit = estimate x this / 100. */
  gasMarginPercent: bigint;
  now(): number;
  /** Told what each mined settlement transaction cost (gas used x effective price), once. */
  onGasSpent?: (network: NetworkInfo, wei: bigint) => void;
}

type Ctx = {
  rt: NetworkRuntime;
  cfg: SettleConfig;
  payment: EvmPayment;
  /** The hash this settle recorded (or reconciles) and the ledger entry holding it, once there are. */
  progress: { hash?: Hash; entry?: LedgerEntry };
  /** A reverted transfer is tried again at most once per settle request. */
  transferRetried?: boolean;
};

/** What one broadcast sends: `prior` calls first, at the nonces just below `main`'s. */
type TxPlan = { main: TxRequest; prior: TxRequest[]; fees: FeeQuote };

/** Re-signs at a fresh nonce when another transaction took ours (the key used by another process). */
const MAX_NONCE_RETRIES = 3;

export async function settlePayment(rt: NetworkRuntime, cfg: SettleConfig, request: PaymentRequest): Promise<SettleOutcome> {
  const parsed = rt.handler.parse(request);
  if (!parsed.ok) return failure(parsed.rejection, "", parsed.payer);
  const ctx: Ctx = { rt, cfg, payment: parsed.value, progress: {} };
  const { progress } = ctx;
  try {
    const entry = await cfg.ledger.get(ctx.payment.ledgerKey);
    return entry ? await fromEntry(ctx, entry) : await settleFresh(ctx, 0);
  } catch (e) {
    // Once bytes were recorded the outcome lives on chain: never report a failure the chain may contradict.
    if (progress.hash) {
      if (progress.entry) await write(ctx, progress.entry, { pendingAnswered: true, leaseUntil: cfg.now() }).catch(() => undefined);
      return pending(ctx, progress.hash, `outcome not recorded (${nodeMessage(e)})`);
    }
    return failure(reject(Reason.unexpectedSettle, `settlement failed before anything was sent: ${nodeMessage(e)}`), "", ctx.payment.payer);
  }
}

function fromEntry(ctx: Ctx, entry: LedgerEntry): Promise<SettleOutcome> | SettleOutcome {
  const leaseLive = (entry.leaseUntil ?? 0) > ctx.cfg.now();
  switch (entry.state) {
    case "success":
      return duplicate(ctx, `this payment was already settled in transaction ${entry.transaction}`, entry.transaction);
    case "failed":
      return mayTryAgain(ctx, entry) ? tryAgain(ctx, entry) : recordedFailure(ctx, entry);
    case "claimed":
      return leaseLive ? duplicate(ctx, "another request is settling this payment right now") : settleFresh(ctx, entry.version);
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
  if (mined?.status === "success") return finish(ctx, entry, mined);
  return settleFresh(ctx, entry.version);
}

const withMargin = (cfg: SettleConfig, gas: bigint) => (gas * cfg.gasMarginPercent) / 100n;

/** Absent (expectedVersion 0), an abandoned claim or a retryable failure: claim it, check it on chain, sign, record, send. */
async function settleFresh(ctx: Ctx, expectedVersion: number): Promise<SettleOutcome> {
  const { rt, cfg, payment: p } = ctx;
  const late = rt.handler.checkTime(p, BigInt(Math.floor(cfg.now() / 1000)));
  if (late) return failure(late, "", p.payer);
  const claimed = await cfg.ledger.compareAndSet(
    { key: p.ledgerKey, state: "claimed", network: rt.network.caip2, payer: p.payer, amount: p.amount.toString(), leaseUntil: cfg.now() + cfg.leaseMs, updatedAt: cfg.now() },
    expectedVersion,
  );
  if (!claimed) return duplicate(ctx, "another request claimed this payment first");

  return rt.pool.withSigner(async (signer) => {
    let plan: TxPlan;
    try {
      const [checked, fees] = await Promise.all([rt.handler.checkOnChain(rt.chain, p, signer.address, { estimateGas: true }), rt.fees.quote()]);
      if (!checked.ok) {
        // Nothing was sent: free the payment (a stuck claim would also free itself when its lease ends).
        await cfg.ledger.release(claimed.key, claimed.version).catch(() => undefined);
        return failure(checked.rejection, "", p.payer);
      }
      const prior = (checked.value.prior ?? []).map((c) => ({ to: c.to, data: c.data, gas: withMargin(cfg, c.gas) }));
      plan = { main: { ...rt.handler.settleCall(p), gas: withMargin(cfg, checked.value.gas!) }, prior, fees };
    } catch (e) {
      await cfg.ledger.release(claimed.key, claimed.version).catch(() => undefined);
      throw e;
    }
    return broadcast(ctx, claimed, signer, plan);
  }, rt.handler.settler?.(p));
}

async function broadcast(ctx: Ctx, claimed: LedgerEntry, signer: EvmSigner, plan: TxPlan): Promise<SettleOutcome> {
  const { rt, cfg, progress } = ctx;
  let entry = claimed;
  let prior = plan.prior;
  for (let attempt = 0; ; attempt++) {
    let first: number;
    try {
      first = await signer.nonces.acquire(prior.length + 1);
    } catch (e) {
      if (entry.state === "claimed") await cfg.ledger.release(entry.key, entry.version).catch(() => undefined);
      throw e;
    }
    const priorTxs: SignedTx[] = [];
    for (const [i, call] of prior.entries()) priorTxs.push(await signer.sign(call, plan.fees, first + i));
    const tx = await signer.sign(plan.main, plan.fees, first + prior.length);
    const recorded = await write(ctx, entry, {
      state: "broadcast",
      transaction: tx.hash,
      rawTransaction: tx.raw,
      priorTransactions: priorTxs.length ? priorTxs.map((t) => ({ transaction: t.hash, rawTransaction: t.raw })) : entry.priorTransactions,
      leaseUntil: cfg.now() + cfg.leaseMs,
      pendingAnswered: undefined,
    });
    if (!recorded) {
      await abandonFrom(signer, [...priorTxs, tx], 0);
      return duplicate(ctx, "another request took this payment over before it was sent");
    }
    entry = recorded;
    progress.hash = tx.hash;
    progress.entry = recorded;

    const priorSent = await sendPrior(rt, signer, priorTxs, tx);
    if (priorSent.kind === "taken") {
      // Another transaction holds a prior call's nonce: sign the unsent calls again at fresh nonces.
      prior = prior.slice(priorSent.index);
      if (attempt < MAX_NONCE_RETRIES) {
        await signer.nonces.resync();
        continue;
      }
      return recordFailure(ctx, entry, reject(Reason.unexpectedSettle, `the node refused the settlement transactions: ${priorSent.message}`), "");
    }
    if (priorSent.kind === "rejected") {
      return recordFailure(ctx, entry, reject(Reason.unexpectedSettle, `the node refused the transaction before the transfer: ${priorSent.message}`), "");
    }
    // Whatever happens to the transfer from here on, the prior calls are out: never sign them again.
    prior = [];

    signer.track(tx);
    const sent = await sendRawTransaction(rt.chain.client, tx.raw);
    if (sent.kind === "nonceTooLow" || sent.kind === "nonceTaken") {
      // Mined already (a retried send that did get through), or another transaction has our nonce
      // (the key is used elsewhere): our bytes can never be mined, so sign again at a fresh nonce.
      const receipt = sent.kind === "nonceTooLow" ? await getReceipt(rt.chain.client, tx.hash).catch(() => null) : null;
      if (receipt) return finish(ctx, entry, receipt, signer, tx.nonce);
      signer.settled(tx.nonce);
      if (attempt < MAX_NONCE_RETRIES) {
        await signer.nonces.resync();
        continue;
      }
      return recordFailure(ctx, entry, reject(Reason.unexpectedSettle, `the node refused the settlement transaction: ${sent.message}`), "");
    }
    if (sent.kind === "rejected") {
      // Never entered the pool: free its nonce (reuse or fill), and record the payment as failed.
      await signer.abandon(tx.nonce);
      return recordFailure(ctx, entry, reject(Reason.unexpectedSettle, `the node refused the settlement transaction: ${sent.message}`), "");
    }
    // accepted, or unreachable after retries: the bytes are recorded and tracked; the receipt decides.
    return awaitOutcome(ctx, entry, tx.hash, signer, tx.nonce);
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
  const { rt, cfg, progress } = ctx;
  const raw = entry.rawTransaction as Hex | undefined;
  const hash = entry.transaction as Hash | undefined;
  if (!raw || !hash) return failure(reject(Reason.invalidTransactionState, "ledger entry in broadcast state without a transaction"), "", ctx.payment.payer);
  // Only a retry of the very same payment may collect its outcome: same target, same calldata.
  const recordedTx = parseTransaction(raw);
  const call = rt.handler.settleCall(ctx.payment);
  if (recordedTx.to?.toLowerCase() !== call.to.toLowerCase() || recordedTx.data?.toLowerCase() !== call.data.toLowerCase()) {
    return duplicate(ctx, `a different authorization with this payment's nonce was sent in transaction ${hash}`, hash);
  }
  const taken = await write(ctx, entry, { leaseUntil: cfg.now() + cfg.leaseMs, pendingAnswered: undefined });
  if (!taken) return duplicate(ctx, `another request is settling this payment right now (transaction ${hash})`, hash);
  progress.hash = hash;
  progress.entry = taken;
  const signer = rt.pool.byAddress(await recoverTransactionAddress({ serializedTransaction: raw as never }));
  const nonce = recordedTx.nonce!;

  const mined = await getReceipt(rt.chain.client, hash).catch(() => null);
  if (mined) return finish(ctx, taken, mined, signer, nonce);
  await resendPrior(rt, taken, signer);
  const sent = await sendRawTransaction(rt.chain.client, raw);
  if (sent.kind === "nonceTooLow") {
    const receipt = await waitForReceipt(rt.chain.client, hash, { timeoutMs: Math.min(cfg.receiptTimeoutMs, 2000), pollingIntervalMs: cfg.pollingIntervalMs });
    if (receipt) return finish(ctx, taken, receipt, signer, nonce);
    signer?.settled(nonce);
    return recordFailure(
      ctx,
      taken,
      reject(Reason.evmTransactionFailed, `transaction ${hash} can never be mined: another transaction used its nonce`),
      "",
    );
  }
  if (signer && sent.kind !== "rejected") signer.track({ hash, raw, nonce });
  return awaitOutcome(ctx, taken, hash, signer, nonce);
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

async function awaitOutcome(ctx: Ctx, entry: LedgerEntry, hash: Hash, signer: EvmSigner | undefined, nonce: number): Promise<SettleOutcome> {
  const { rt, cfg } = ctx;
  const receipt = await waitForReceipt(rt.chain.client, hash, {
    timeoutMs: cfg.receiptTimeoutMs,
    pollingIntervalMs: cfg.pollingIntervalMs,
    stallCheckMs: cfg.stallCheckMs,
    onStall: signer ? () => signer.repair() : undefined,
  });
  if (receipt) return finish(ctx, entry, receipt, signer, nonce);
  // Lease released with the answer: the caller's retry reconciles at once.
  await write(ctx, entry, { pendingAnswered: true, leaseUntil: cfg.now() });
  return pending(ctx, hash, `not mined within ${cfg.receiptTimeoutMs} ms`);
}

/** Records the mined outcome; only the writer that turns the entry into `success` answers success. */
async function finish(ctx: Ctx, entry: LedgerEntry, receipt: TransactionReceipt, signer?: EvmSigner, nonce?: number): Promise<SettleOutcome> {
  if (signer && nonce !== undefined) signer.minedThrough(nonce);
  const hash = receipt.transactionHash;
  let rejection: Rejection | undefined;
  if (receipt.status === "success") {
    rejection = ctx.rt.handler.checkReceipt(receipt, ctx.payment);
  } else {
    const retry = signer ? await retryTransfer(ctx, entry, signer) : undefined;
    if (retry && typeof retry !== "string") return retry;
    rejection = reject(Reason.evmTransactionFailed, `settlement transaction ${hash} reverted${retry ? `; not tried again: ${retry}` : ""}`);
  }
  if (rejection) return recordFailure(ctx, entry, rejection, hash);
  const stored = await write(ctx, entry, { state: "success", transaction: hash, leaseUntil: undefined, pendingAnswered: undefined, reason: undefined, message: undefined });
  if (!stored) return answerFromLedger(ctx, hash);
  ctx.cfg.onGasSpent?.(ctx.rt.network, receipt.gasUsed * receipt.effectiveGasPrice); // the writer that won counts it

  return { success: true, payer: ctx.payment.payer, transaction: hash, amount: ctx.payment.amount };
}

/**
 * The transfer reverted while its prior calls (a permit) may have done their part: when the chain now
 * shows the transfer can go through with no prior call, send a new transfer (never a prior call again).
 * Returns the outcome, or why it was not tried (undefined when the handler does not retry).
 */
async function retryTransfer(ctx: Ctx, entry: LedgerEntry, signer: EvmSigner): Promise<SettleOutcome | string | undefined> {
  const { rt, cfg, payment: p } = ctx;
  if (!rt.handler.retriesFailedTransfer || ctx.transferRetried) return undefined;
  ctx.transferRetried = true;
  try {
    const [checked, fees] = await Promise.all([rt.handler.checkOnChain(rt.chain, p, signer.address, { estimateGas: true }), rt.fees.quote()]);
    if (!checked.ok) return checked.rejection.message;
    if (checked.value.prior?.length) return "the calls before the transfer did not take effect";
    return await broadcast(ctx, entry, signer, { main: { ...rt.handler.settleCall(p), gas: withMargin(cfg, checked.value.gas!) }, prior: [], fees });
  } catch (e) {
    return `chain reads failed: ${nodeMessage(e)}`;
  }
}

async function recordFailure(ctx: Ctx, entry: LedgerEntry, rejection: Rejection, transaction: string): Promise<SettleOutcome> {
  const stored = await write(ctx, entry, {
    state: "failed",
    reason: rejection.reason,
    message: rejection.message,
    // Only a mined transaction is worth naming in the answer; the message names any other hash.
    transaction: transaction || undefined,
    leaseUntil: undefined,
    pendingAnswered: undefined,
  });
  if (!stored) return answerFromLedger(ctx, transaction);
  return failure(rejection, transaction, ctx.payment.payer);
}

/** Someone else moved the entry on while we worked: answer from what they recorded, never success. */
async function answerFromLedger(ctx: Ctx, hash: string): Promise<SettleOutcome> {
  const now = await ctx.cfg.ledger.get(ctx.payment.ledgerKey);
  if (now?.state === "failed") return recordedFailure(ctx, now);
  return duplicate(ctx, "another request recorded this payment's outcome", now?.transaction ?? hash);
}

function write(ctx: Ctx, entry: LedgerEntry, changes: Partial<Omit<LedgerEntry, "key" | "version">>): Promise<LedgerEntry | undefined> {
  const { version: _version, ...rest } = entry;
  return ctx.cfg.ledger.compareAndSet({ ...rest, ...changes, updatedAt: ctx.cfg.now() }, entry.version);
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
