/**
 * `exact` payments in SPL tokens on Solana, with the facilitator as fee payer.
 *
 * Verify: decode, pure rules, the facilitator's limits (accepted mint, positive amount, caps on
 * compute units and priority fee), the payer's signature, the settlement ledger (a payment already
 * settled or in flight is not valid again), then a simulation of the client-signed transaction
 * against its own blockhash (which also proves the blockhash is still valid).
 * Settle: the same checks (the limits before anything is claimed or signed), then core's settlement
 * engine, which owns the ledger (claim, lease, outcome, take-over); this side co-signs, has the engine
 * record signature and signed bytes, sends, and waits within a bound. A later settle of a pending
 * payment re-sends the recorded bytes; nothing is ever signed again.
 */
import { createHash } from "node:crypto";
import { findAssociatedTokenPda } from "@solana-program/token";
import { getBase58Decoder, type Address } from "@solana/kit";
import {
  collectOnLedger,
  DEFAULT_LEASE_MS,
  ledgerVerdict,
  Reason,
  reject,
  settleOnLedger,
  SvmPayload,
  zodMessage,
  type ChainAdapter,
  type ChainOutcome,
  type HeldPayment,
  type LedgerPayment,
  type SettlementConfig,
  type NetworkInfo,
  type PaymentMechanism,
  type PaymentRequest,
  type Rejection,
  type SettleOutcome,
  type SettlementLedger,
  type VerifyOutcome,
  PAYMENT_IDENTIFIER,
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
  readonly extensions = [PAYMENT_IDENTIFIER];
  readonly networks: readonly NetworkInfo[];
  private readonly served = new Map<string, ServedNetwork>();
  private readonly keys = new Map<string, FeePayerKey>();
  private nextAdvertised = 0;
  readonly confirmTimeoutMs: number;
  private readonly pollIntervalMs: number;
  private readonly resendIntervalMs: number;
  private readonly maxComputeUnits: number;
  private readonly maxPriorityFeeLamports: number;
  private readonly ledger: SettlementLedger;
  private readonly engine: SettlementConfig;

  constructor(opts: SvmExactMechanismOptions, keys: FeePayerKey[]) {
    this.networks = opts.networks;
    this.ledger = opts.ledger;
    this.confirmTimeoutMs = opts.confirmTimeoutMs ?? 30_000;
    this.pollIntervalMs = opts.pollIntervalMs ?? 400;
    this.resendIntervalMs = opts.resendIntervalMs ?? 2_000;
    this.engine = { ledger: opts.ledger, leaseMs: opts.leaseMs ?? DEFAULT_LEASE_MS };
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
      const verdict = ledgerVerdict(existing, request, Date.now());
      // A payment answered pending is the clients' retry path: its settle reconciles the recorded bytes.
      if (verdict.kind === "settle will answer") return { isValid: true, payer };
      const problem = verdict.kind === "refused" ? verdict.rejection : (await simulated)();
      return problem ? { isValid: false, payer, ...problem } : { isValid: true, payer };
    } catch (e) {
      return { isValid: false, payer, ...reject(Reason.unexpectedVerify, `verification could not complete: ${errorText(e)}`) };
    }
  }

  async settle(request: PaymentRequest): Promise<SettleOutcome> {
    const p = await this.prepare(request).catch((e: unknown) => reject(Reason.unexpectedSettle, `settlement could not complete: ${errorText(e)}`));
    if (isRejection(p)) return { success: false, transaction: "", ...p };
    return settleOnLedger(this.engine, ledgerPayment(p), new SvmSettlement(this, p));
  }

  async collect(request: PaymentRequest, version: number): Promise<SettleOutcome | undefined> {
    const p = await this.prepare(request).catch(() => undefined);
    if (!p || isRejection(p)) return undefined;
    return collectOnLedger(this.engine, ledgerPayment(p), new SvmSettlement(this, p), version);
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
  async simulate(p: PreparedPayment): Promise<Rejection | undefined> {
    const { err, logs } = await p.network.chain.simulate(p.clientWire);
    return simulationRejection(err, logs);
  }

  landingWait(p: PreparedPayment, signature: string, wireBase64: string, resendAtOnce: boolean) {
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
}

/** The ledger key of a Solana payment: its network and the hash of the message every signer signs. */
export function settlementKey(caip2: string, messageBytes: Uint8Array): string {
  return `svm:${caip2}:${createHash("sha256").update(messageBytes).digest("hex")}`;
}

function ledgerPayment(p: PreparedPayment): LedgerPayment {
  return { key: p.ledgerKey, payer: p.transfer.authority, amount: p.transfer.amount, request: p.request, ...(p.policy ? { refusal: p.policy } : {}) };
}

/** One settle request's chain side (core's settlement engine owns the ledger). */
class SvmSettlement implements ChainAdapter {
  constructor(
    private readonly mechanism: SvmExactMechanism,
    private readonly p: PreparedPayment,
  ) {}

  /** Co-sign, simulate, make sure it is not on chain already, record, send, wait. */
  async send(held: HeldPayment): Promise<ChainOutcome> {
    const { p, mechanism } = this;
    // Co-sign first (local), then simulate and look the signature up in one round trip.
    const { signature: bytes, wireBase64 } = await coSign(p.tx, p.feePayer);
    const signature = getBase58Decoder().decode(bytes);
    const [problem, landed] = await Promise.all([mechanism.simulate(p), p.network.chain.status(signature)]);
    if (problem) return { kind: "refused", rejection: problem };
    // Our signature is deterministic, so a landed one means this payment was settled outside this
    // ledger (a wiped store, a second ledger sharing our keys): never answer success for it again.
    if (landed) return { kind: "refused", transaction: signature, rejection: reject(Reason.duplicateSettlement, `this payment is already on chain in transaction ${signature}`) };
    // Signature and bytes are durable before anything leaves: a crash after this line is reconciled, never re-signed.
    if (!(await held.record({ transaction: signature, rawTransaction: wireBase64 }))) return { kind: "lost" };
    let sent = true;
    try {
      await p.network.chain.send(wireBase64);
    } catch {
      sent = false; // perhaps sent anyway; the wait re-sends the same bytes at once
    }
    return this.landing(await awaitLanding(p.network.chain, mechanism.landingWait(p, signature, wireBase64, !sent)), signature);
  }

  /** A recorded broadcast: look its signature up, re-sending the recorded bytes while they can still land. */
  async reconcile(held: HeldPayment): Promise<ChainOutcome> {
    const { transaction, rawTransaction } = held.entry;
    const outcome = await awaitLanding(this.p.network.chain, this.mechanism.landingWait(this.p, transaction!, rawTransaction!, true));
    return this.landing(outcome, transaction!);
  }

  private landing(outcome: LandingOutcome, signature: string): ChainOutcome {
    if (outcome.kind === "landed" && outcome.err == null) return { kind: "success", transaction: signature };
    if (outcome.kind === "landed") {
      return { kind: "failed", transaction: signature, rejection: reject(Reason.svmTransactionFailed, `transaction ${signature} failed on chain: ${jsonText(outcome.err)}`) };
    }
    if (outcome.kind === "expired") {
      return { kind: "failed", transaction: signature, rejection: reject(Reason.svmBlockhashExpired, `transaction ${signature} did not land before its blockhash expired; the payer must sign a new one`) };
    }
    return { kind: "pending", transaction: signature, why: `not seen landed within ${this.mechanism.confirmTimeoutMs} ms` };
  }
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

const jsonText = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? Number(x) : x));
const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e));
