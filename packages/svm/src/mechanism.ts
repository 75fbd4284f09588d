/**
 * `exact` payments in SPL tokens on Solana, with the facilitator as fee payer.
 *
 * Verify: decode, pure rules, the facilitator's limits (accepted mint, positive amount, caps on
 * compute units and priority fee), the payer's signature, the settlement ledger (a payment already
 * settled or in flight is not valid again), then a simulation of the client-signed transaction
 * against its own blockhash (which also proves the blockhash is still valid).
 * Settle: the same checks (the limits before anything is claimed or signed), then the ledger
 * protocol of core's SettlementLedger: claim by compare-and-set, co-sign, record signature and
 * signed bytes, send, wait within a bound, record the outcome. A later settle of a pending payment
 * reconciles against the recorded signature and re-sends the recorded bytes; it never signs again.
 * The claim and the broadcast carry a short lease that the settle renews while it works (core's
 * HeldEntry; packages/evm/src/settle.ts explains the design), so a crashed settle's payment is taken
 * over within about one lease.
 */
import { createHash } from "node:crypto";
import { findAssociatedTokenPda } from "@solana-program/token";
import { getBase58Decoder, type Address } from "@solana/kit";
import {
  DEFAULT_LEASE_MS,
  HeldEntry,
  Reason,
  reject,
  storedRequest,
  bindingOf,
  checkBinding,
  SvmPayload,
  zodMessage,
  type LedgerEntry,
  type NetworkInfo,
  type PaymentMechanism,
  type PaymentRequest,
  type Rejection,
  type SettleOutcome,
  type SettlementLedger,
  type VerifyOutcome,
} from "@facilitator/core";
import { isSolanaAddress } from "./base58.ts";
import { createChainClient, type SvmChainClient } from "./chain.ts";
import { awaitLanding, type LandingOutcome } from "./confirm.ts";
import {
  DEFAULT_MAX_COMPUTE_UNITS,
  DEFAULT_MAX_PRIORITY_FEE_LAMPORTS,
  MAX_TRANSACTION_COMPUTE_UNITS,
  TOKEN_2022_PROGRAM,
  TOKEN_PROGRAM,
} from "./constants.ts";
import { checkPaymentPolicy, checkPaymentRules, TRANSFER_INDEX, type TransferDetails } from "./rules.ts";
import { checkPayerSignature, coSign, loadFeePayerKey, type FeePayerKey, type SecretKeyInput } from "./signing.ts";
import { decodePaymentTransaction, isRejection, type PaymentTransaction } from "./transaction.ts";

export interface SvmExactMechanismOptions {
  /** Solana networks to serve (from the NetworkRegistry: RPC URL and default mint per network). */
  networks: readonly NetworkInfo[];
  /** Fee-payer secrets: base58 of 64 bytes (as `SVM_PRIVATE_KEY`) or of a 32-byte seed, or raw bytes. */
  feePayers: readonly SecretKeyInput[];
  ledger: SettlementLedger;
  /** Bound on waiting for a sent transaction to land; below the official clients' 90 s. Default 30 s. */
  confirmTimeoutMs?: number;
  /** Between signature-status polls. Default 400 ms (one slot). */
  pollIntervalMs?: number;
  /** Between re-sends of the same bytes while not landed. Default 2 s. */
  resendIntervalMs?: number;
  /**
   * Lease of a claim or broadcast in the ledger, renewed every leaseMs/3 while its settle works; a
   * crashed settle's payment is taken over (reconciled from its recorded bytes) once it runs out. Default 5 s.
   */
  leaseMs?: number;
  /** Per RPC request. Default 10 s. */
  rpcTimeoutMs?: number;
  /** Most compute units a payment's SetComputeUnitLimit may ask for. Default 200,000 (constants.ts says why). */
  maxComputeUnits?: number;
  /** Most priority fee (units x price / 1e6, rounded up) a payment may make the fee payer pay, in lamports. Default 5,000. */
  maxPriorityFeeLamports?: number;
}

interface ServedNetwork {
  info: NetworkInfo;
  chain: SvmChainClient;
}

/** A request that passed every check that needs no chain state. */
interface PreparedPayment {
  network: ServedNetwork;
  tx: PaymentTransaction;
  transfer: TransferDetails;
  feePayer: FeePayerKey;
  /** The client-signed transaction as received (for simulation). */
  clientWire: string;
  ledgerKey: string;
  request: PaymentRequest;
  /**
   * Why the facilitator will not pay for this payment (mint not accepted, amount not positive, compute
   * budget over a cap), if it will not. Verify refuses with it; settle refuses with it before claiming
   * or signing anything, but still answers from a ledger record made before the limits changed, so a
   * payment already sent is reconciled, never stranded.
   */
  policy?: Rejection;
}

export async function createSvmExactMechanism(opts: SvmExactMechanismOptions): Promise<PaymentMechanism> {
  const keys = await Promise.all(opts.feePayers.map(loadFeePayerKey));
  if (keys.length === 0) throw new Error("the Solana exact mechanism needs at least one fee-payer key");
  for (const n of opts.networks) {
    if (n.family !== "svm") throw new Error(`network ${n.name} is not a Solana network`);
  }
  const { maxComputeUnits, maxPriorityFeeLamports } = opts;
  if (maxComputeUnits !== undefined && !(Number.isInteger(maxComputeUnits) && maxComputeUnits >= 1 && maxComputeUnits <= MAX_TRANSACTION_COMPUTE_UNITS)) {
    throw new Error(`maxComputeUnits must be an integer from 1 to ${MAX_TRANSACTION_COMPUTE_UNITS}, got ${maxComputeUnits}`);
  }
  if (maxPriorityFeeLamports !== undefined && !(Number.isSafeInteger(maxPriorityFeeLamports) && maxPriorityFeeLamports >= 0)) {
    throw new Error(`maxPriorityFeeLamports must be a whole number of lamports, got ${maxPriorityFeeLamports}`);
  }
  return new SvmExactMechanism(opts, keys);
}

class SvmExactMechanism implements PaymentMechanism {
  readonly scheme = "exact";
  readonly family = "svm" as const;
  readonly networks: readonly NetworkInfo[];
  private readonly served = new Map<string, ServedNetwork>();
  private readonly keys = new Map<string, FeePayerKey>();
  private nextAdvertised = 0;
  private readonly confirmTimeoutMs: number;
  private readonly pollIntervalMs: number;
  private readonly resendIntervalMs: number;
  private readonly leaseMs: number;
  private readonly maxComputeUnits: number;
  private readonly maxPriorityFeeLamports: number;
  private readonly ledger: SettlementLedger;

  constructor(opts: SvmExactMechanismOptions, keys: FeePayerKey[]) {
    this.networks = opts.networks;
    this.ledger = opts.ledger;
    this.confirmTimeoutMs = opts.confirmTimeoutMs ?? 30_000;
    this.pollIntervalMs = opts.pollIntervalMs ?? 400;
    this.resendIntervalMs = opts.resendIntervalMs ?? 2_000;
    this.leaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS;
    this.maxComputeUnits = opts.maxComputeUnits ?? DEFAULT_MAX_COMPUTE_UNITS;
    this.maxPriorityFeeLamports = opts.maxPriorityFeeLamports ?? DEFAULT_MAX_PRIORITY_FEE_LAMPORTS;
    for (const k of keys) this.keys.set(k.address, k);
    for (const n of opts.networks) {
      this.served.set(n.caip2, { info: n, chain: createChainClient(n.rpcUrl, opts.rpcTimeoutMs ?? 10_000) });
    }
  }

  /** Advertises the fee payers in turn, so resource servers spread over them; any of ours is accepted. */
  supportedExtra(_network: NetworkInfo): Record<string, unknown> {
    const addresses = this.signers();
    return { feePayer: addresses[this.nextAdvertised++ % addresses.length] };
  }

  signers(): string[] {
    return [...this.keys.keys()];
  }

  async verify(request: PaymentRequest): Promise<VerifyOutcome> {
    const p = await this.checkRules(request).catch((e: unknown) => reject(Reason.unexpectedVerify, `verification could not complete: ${errorText(e)}`));
    if (isRejection(p)) return { isValid: false, ...p };
    // Nothing the facilitator would not pay for is simulated, nor its signature checked.
    if (p.policy) return { isValid: false, ...p.policy };
    // The simulation's round trip is the longest step: start it now, and check the payer's signature
    // and the ledger meanwhile. Answers keep their precedence; a simulation reads and changes nothing.
    const simulated = this.simulate(p).then(
      (problem) => () => problem,
      (e: unknown) => () => {
        throw e;
      },
    );
    const badSignature = checkPayerSignature(p.tx, p.transfer);
    if (badSignature) return { isValid: false, ...badSignature };
    const payer = p.transfer.authority;
    try {
      const existing = await this.ledger.get(p.ledgerKey);
      const problem = (existing && repeatRejection(existing)) ?? (await simulated)();
      return problem ? { isValid: false, payer, ...problem } : { isValid: true, payer };
    } catch (e) {
      return { isValid: false, payer, ...reject(Reason.unexpectedVerify, `verification could not complete: ${errorText(e)}`) };
    }
  }

  async settle(request: PaymentRequest): Promise<SettleOutcome> {
    const p = await this.prepare(request).catch((e: unknown) => reject(Reason.unexpectedSettle, `settlement could not complete: ${errorText(e)}`));
    if (isRejection(p)) return { success: false, transaction: "", ...p };
    try {
      return await this.settlePrepared(p);
    } catch (e) {
      return { success: false, payer: p.transfer.authority, transaction: "", ...reject(Reason.unexpectedSettle, `settlement could not complete: ${errorText(e)}`) };
    }
  }

  /** Checks that need no chain state: scheme, network, payload shape, the rules, the payer's signature. */
  private async prepare(request: PaymentRequest): Promise<PreparedPayment | Rejection> {
    const p = await this.checkRules(request);
    if (isRejection(p)) return p;
    return checkPayerSignature(p.tx, p.transfer) ?? p;
  }

  /** `prepare` short of the payer's signature, which the caller checks. */
  private async checkRules(request: PaymentRequest): Promise<PreparedPayment | Rejection> {
    if (request.scheme !== "exact") return reject(Reason.unsupportedScheme, `scheme ${request.scheme} is not served by the Solana exact mechanism`);
    const network = this.served.get(request.network.caip2);
    if (!network) return reject(Reason.invalidNetwork, `network ${request.networkId} is not served by this facilitator's Solana mechanism`);
    const payload = SvmPayload.safeParse(request.payload);
    if (!payload.success) return reject(Reason.invalidPayload, zodMessage(payload.error));
    const tx = decodePaymentTransaction(payload.data.transaction);
    if (isRejection(tx)) return tx;

    const r = request.requirements;
    const { feePayer: requiredFeePayer, memo } = r.extra;
    if (requiredFeePayer !== undefined && typeof requiredFeePayer !== "string") return reject(Reason.invalidRequirements, "extra.feePayer must be a base58 address");
    if (memo !== undefined && typeof memo !== "string") return reject(Reason.invalidRequirements, "extra.memo must be a string");
    if (!isSolanaAddress(r.payTo)) return reject(Reason.invalidRequirements, `payTo ${r.payTo} is not a Solana address`);
    if (!isSolanaAddress(r.asset)) return reject(Reason.invalidRequirements, `asset ${r.asset} is not a Solana mint address`);

    const [destinations, feePayerTokenAccounts] = await Promise.all([
      associatedTokenAccounts(r.payTo, r.asset),
      associatedTokenAccounts(tx.feePayer, r.asset),
    ]);
    const transfer = checkPaymentRules(tx, {
      feePayers: new Set(this.keys.keys()),
      requiredFeePayer,
      asset: r.asset,
      amount: r.amount,
      destinations,
      feePayerTokenAccounts,
      memo,
    });
    if (isRejection(transfer)) return transfer;
    const policy = checkPaymentPolicy(tx, r, {
      network: network.info,
      maxComputeUnits: this.maxComputeUnits,
      maxPriorityFeeLamports: this.maxPriorityFeeLamports,
    });
    return {
      network,
      tx,
      transfer,
      feePayer: this.keys.get(tx.feePayer)!,
      clientWire: payload.data.transaction,
      ledgerKey: settlementKey(network.info.caip2, tx.messageBytes),
      request,
      ...(policy ? { policy } : {}),
    };
  }

  /** Simulates the client-signed transaction; a blockhash that expired shows up here as BlockhashNotFound. */
  private async simulate(p: PreparedPayment): Promise<Rejection | undefined> {
    const { err, logs } = await p.network.chain.simulate(p.clientWire);
    return simulationRejection(err, logs);
  }

  async collect(request: PaymentRequest, version: number): Promise<SettleOutcome | undefined> {
    const p = await this.prepare(request).catch(() => undefined);
    if (!p || isRejection(p)) return undefined;
    const entry = await this.ledger.get(p.ledgerKey);
    if (entry?.state !== "broadcast" || entry.version !== version) return undefined;
    if (!entry.pendingAnswered && (entry.leaseUntil ?? 0) > Date.now()) return undefined; // its settle is still at work
    return this.takeOverBroadcast(p, entry, true);
  }

  /**
   * Takes a recorded broadcast at its version and waits on its signature, re-sending the recorded
   * bytes: nothing is signed here. Undefined when another settle took it first.
   */
  private async takeOverBroadcast(p: PreparedPayment, entry: LedgerEntry, collecting = false): Promise<SettleOutcome | undefined> {
    const held = await HeldEntry.take(this.ledger, { ...withoutVersion(entry), pendingAnswered: false }, entry.version, { leaseMs: this.leaseMs });
    return held ? holding(held, () => this.reconcile(p, held, collecting)) : undefined;
  }

  private async settlePrepared(p: PreparedPayment): Promise<SettleOutcome> {
    const lease = { leaseMs: this.leaseMs };
    // A lost compare-and-set means another settle moved first: read again and answer from its record.
    for (let attempt = 0; attempt < 5; attempt++) {
      const entry = await this.ledger.get(p.ledgerKey);
      // The message fixes mint, destination and amount already; the binding also holds the scheme and network as first asked.
      const mismatch = entry && checkBinding(entry, p.request);
      if (mismatch) return { success: false, payer: p.transfer.authority, transaction: "", ...mismatch };
      if (!entry) {
        if (p.policy) return refused(p);
        const held = await HeldEntry.take(this.ledger, this.entryFor(p, { state: "claimed" }), 0, lease);
        if (held) return holding(held, () => this.broadcast(p, held));
        continue;
      }
      if (entry.state === "success") {
        if (!entry.successUnanswered) return duplicate(p, entry);
        // The one success answer of a payment the facilitator collected by itself: whoever clears the mark gives it.
        const { version: _version, successUnanswered: _mark, ...rest } = entry;
        if (await this.ledger.compareAndSet({ ...rest, updatedAt: Date.now() }, entry.version)) {
          return { success: true, payer: p.transfer.authority, transaction: entry.transaction!, amount: p.transfer.amount };
        }
        continue;
      }
      if (entry.state === "failed") return recordedFailure(p, entry);
      const leaseLive = (entry.leaseUntil ?? 0) > Date.now();
      if (entry.state === "claimed") {
        if (leaseLive) return duplicate(p, entry);
        // The holder crashed before recording a broadcast, so nothing was sent: take the payment over.
        if (p.policy) return refused(p);
        const held = await HeldEntry.take(this.ledger, this.entryFor(p, { state: "claimed" }), entry.version, lease);
        if (held) return holding(held, () => this.broadcast(p, held));
        continue;
      }
      // broadcast: someone is waiting for it right now, unless a caller was told pending (or its holder died).
      if (!entry.pendingAnswered && leaseLive) return duplicate(p, entry);
      const outcome = await this.takeOverBroadcast(p, entry);
      if (outcome) return outcome;
    }
    return { success: false, payer: p.transfer.authority, transaction: "", ...reject(Reason.duplicateSettlement, "this payment is being settled by another request") };
  }

  private async broadcast(p: PreparedPayment, held: HeldEntry): Promise<SettleOutcome> {
    let signed: { signature: string; wireBase64: string } | SettleOutcome;
    try {
      signed = await this.signUnderClaim(p);
    } catch (e) {
      signed = { success: false, payer: p.transfer.authority, transaction: "", ...reject(Reason.unexpectedSettle, `settlement could not complete: ${errorText(e)}`) };
    }
    if ("success" in signed) {
      // Nothing was recorded or sent: free the payment at once rather than at the end of the lease.
      await held.release().catch(() => false);
      return signed;
    }
    const { signature } = signed;
    // Signature and bytes are durable before anything leaves: a crash after this line is reconciled, never re-signed.
    const recorded = await held.write({ state: "broadcast", transaction: signature, rawTransaction: signed.wireBase64, pendingAnswered: false });
    if (!recorded) return duplicate(p, held.entry);
    let sent = true;
    try {
      await p.network.chain.send(signed.wireBase64);
    } catch {
      sent = false; // perhaps sent anyway; the wait re-sends the same bytes at once
    }
    const outcome = await awaitLanding(p.network.chain, this.landingWait(p, signature, signed.wireBase64, !sent));
    return this.finish(p, held, outcome);
  }

  /** Under a claim, before anything is recorded: simulate, co-sign, and make sure it is not on chain already. */
  private async signUnderClaim(p: PreparedPayment): Promise<{ signature: string; wireBase64: string } | SettleOutcome> {
    // Co-sign first (local), then simulate and look the signature up in one round trip.
    const { signature: bytes, wireBase64 } = await coSign(p.tx, p.feePayer);
    const signature = getBase58Decoder().decode(bytes);
    const [problem, landed] = await Promise.all([this.simulate(p), p.network.chain.status(signature)]);
    if (problem) return { success: false, payer: p.transfer.authority, transaction: "", ...problem };
    // Our signature is deterministic, so a landed one means this payment was settled outside this
    // ledger (a wiped store, a second ledger sharing our keys): never answer success for it again.
    if (landed) {
      return { success: false, payer: p.transfer.authority, transaction: signature, ...reject(Reason.duplicateSettlement, `this payment is already on chain in transaction ${signature}`) };
    }
    return { signature, wireBase64 };
  }

  /** A settle after `settlement_pending`: look up the recorded signature; re-send the recorded bytes if still possible. */
  /** `collecting`: nobody is waiting for the answer, so a success is kept for the payment's next settle. */
  private async reconcile(p: PreparedPayment, held: HeldEntry, collecting = false): Promise<SettleOutcome> {
    const { transaction, rawTransaction } = held.entry;
    const outcome = await awaitLanding(p.network.chain, this.landingWait(p, transaction!, rawTransaction!, true));
    return this.finish(p, held, outcome, collecting);
  }

  /**
   * Records the outcome and lets the lease go. A holder that was taken over (it stalled past its
   * lease) records nothing and answers pending: the settle that took over waits on the same
   * signature and records the same outcome.
   */
  private async finish(p: PreparedPayment, held: HeldEntry, outcome: LandingOutcome, collecting = false): Promise<SettleOutcome> {
    const signature = held.entry.transaction!;
    const payer = p.transfer.authority;
    const pending = { success: false as const, payer, transaction: signature, ...reject(Reason.settlementPending, `transaction ${signature} was sent but not seen landed within ${this.confirmTimeoutMs} ms; settle again to reconcile`) };
    let changes: Partial<LedgerEntry>;
    let answer: SettleOutcome;
    if (outcome.kind === "landed" && outcome.err == null) {
      changes = { state: "success", ...(collecting ? { successUnanswered: true } : {}) };
      answer = { success: true, payer, transaction: signature, amount: p.transfer.amount };
    } else if (outcome.kind === "landed") {
      const failure = reject(Reason.svmTransactionFailed, `transaction ${signature} failed on chain: ${jsonText(outcome.err)}`);
      changes = { state: "failed", reason: failure.reason, message: failure.message };
      answer = { success: false, payer, transaction: signature, ...failure };
    } else if (outcome.kind === "expired") {
      const failure = reject(Reason.svmBlockhashExpired, `transaction ${signature} did not land before its blockhash expired; the payer must sign a new one`);
      changes = { state: "failed", reason: failure.reason, message: failure.message };
      answer = { success: false, payer, transaction: signature, ...failure };
    } else {
      changes = { pendingAnswered: true };
      answer = pending;
    }
    try {
      // An outcome recorded needs no request kept for collecting it later.
      const final = changes.state !== undefined ? { request: undefined } : {};
      if (await held.end({ ...changes, ...final, leaseUntil: undefined })) return answer;
    } catch {
      // fall through: unrecorded outcomes are answered as pending, so a retry records them once
    }
    return pending;
  }

  private landingWait(p: PreparedPayment, signature: string, wireBase64: string, resendAtOnce: boolean) {
    return {
      signature,
      wireBase64,
      blockhash: p.tx.blockhash,
      timeoutMs: this.confirmTimeoutMs,
      pollMs: this.pollIntervalMs,
      resendMs: this.resendIntervalMs,
      resendAtOnce,
    };
  }

  private entryFor(p: PreparedPayment, fields: Partial<LedgerEntry> & Pick<LedgerEntry, "state">): Omit<LedgerEntry, "version"> {
    return {
      key: p.ledgerKey,
      network: p.network.info.caip2,
      payer: p.transfer.authority,
      amount: p.transfer.amount.toString(),
      updatedAt: Date.now(),
      binding: bindingOf(p.request),
      request: storedRequest(p.request),
      ...fields,
    };
  }
}

/** The ledger key of a Solana payment: its network and the hash of the message every signer signs. */
export function settlementKey(caip2: string, messageBytes: Uint8Array): string {
  return `svm:${caip2}:${createHash("sha256").update(messageBytes).digest("hex")}`;
}

/**
 * Why a payment with a ledger record is not valid (again), if it is not. A claim whose holder died
 * before recording a broadcast (its lease ran out) sent nothing: the next settle takes it over, so
 * the payment is as valid as the chain says.
 */
function repeatRejection(entry: LedgerEntry): Rejection | undefined {
  if (entry.state === "claimed" && (entry.leaseUntil ?? 0) <= Date.now()) return undefined;
  if (entry.state === "failed") return failureOf(entry);
  if (entry.state === "success") return reject(Reason.duplicateSettlement, `this payment was already settled in transaction ${entry.transaction}`);
  return reject(Reason.duplicateSettlement, "this payment is already being settled");
}

function duplicate(p: PreparedPayment, entry: LedgerEntry): SettleOutcome {
  const message =
    entry.state === "success"
      ? `this payment was already settled in transaction ${entry.transaction}`
      : "this payment is already being settled by another request";
  return { success: false, payer: p.transfer.authority, transaction: entry.transaction ?? "", ...reject(Reason.duplicateSettlement, message) };
}

/** A payment outside the facilitator's limits, refused before anything is claimed or signed. */
function refused(p: PreparedPayment): SettleOutcome {
  return { success: false, payer: p.transfer.authority, transaction: "", ...p.policy! };
}

function recordedFailure(p: PreparedPayment, entry: LedgerEntry): SettleOutcome {
  return {
    success: false,
    payer: p.transfer.authority,
    transaction: entry.transaction ?? "",
    ...failureOf(entry),
  };
}

function failureOf(entry: LedgerEntry): Rejection {
  return reject((entry.reason as Rejection["reason"]) ?? Reason.svmTransactionFailed, entry.message ?? "this payment failed");
}

/** TokenError::InsufficientFunds is custom error 1 of the token programs. */
const TOKEN_INSUFFICIENT_FUNDS = 1;

export function simulationRejection(err: unknown, logs: readonly string[] | null): Rejection | undefined {
  if (err == null) return undefined;
  if (err === "BlockhashNotFound") {
    return reject(Reason.svmBlockhashExpired, "the transaction's blockhash is no longer valid; the payer must sign a new transaction");
  }
  const ie = (err as { InstructionError?: [unknown, unknown] }).InstructionError;
  if (ie && Number(ie[0]) === TRANSFER_INDEX && Number((ie[1] as { Custom?: unknown })?.Custom) === TOKEN_INSUFFICIENT_FUNDS) {
    return reject(Reason.insufficientFunds, "the payer's token account does not hold the amount");
  }
  const tail = (logs ?? []).slice(-3).join(" | ");
  return reject(Reason.svmSimulationFailed, `simulation failed: ${jsonText(err)}${tail ? ` (${tail})` : ""}`);
}

/** Derivations are pure, and the same payee, fee payer and mint recur on every payment. */
const ataCache = new Map<string, Promise<Record<string, string>>>();
function associatedTokenAccounts(owner: string, mint: string): Promise<Record<string, string>> {
  const key = `${owner}:${mint}`;
  let hit = ataCache.get(key);
  if (!hit) {
    if (ataCache.size >= 10_000) ataCache.clear();
    hit = deriveAssociatedTokenAccounts(owner, mint);
    ataCache.set(key, hit);
    hit.catch(() => ataCache.delete(key));
  }
  return hit;
}

async function deriveAssociatedTokenAccounts(owner: string, mint: string): Promise<Record<string, string>> {
  const [classic, t22] = await Promise.all(
    [TOKEN_PROGRAM, TOKEN_2022_PROGRAM].map(async (tokenProgram) => (await findAssociatedTokenPda({ owner: owner as Address, mint: mint as Address, tokenProgram }))[0]),
  );
  return { [TOKEN_PROGRAM]: classic, [TOKEN_2022_PROGRAM]: t22 };
}

/** Runs `work` for the settle that holds `held`; the lease is renewed until it ends, however it ends. */
async function holding(held: HeldEntry, work: () => Promise<SettleOutcome>): Promise<SettleOutcome> {
  try {
    return await work();
  } finally {
    held.stop();
  }
}

function withoutVersion(entry: LedgerEntry): Omit<LedgerEntry, "version"> {
  const { version: _version, ...rest } = entry;
  return rest;
}

const jsonText = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? Number(x) : x));
const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e));
