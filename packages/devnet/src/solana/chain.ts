/**
 * A local Solana cluster of one: litesvm executes, this class adds what a validator and its RPC
 * node add around execution: slots that advance with time, recent blockhashes that expire after a
 * window of blocks, transactions that land (or are dropped) after they were sent, their statuses,
 * and preflight simulation. No HTTP here; rpc.ts serves it.
 */
import { EventEmitter } from "node:events";
import { LiteSVM, TransactionMetadata } from "litesvm";
import { getBase58Decoder, getBase58Encoder, lamports, type Address, type Blockhash } from "@solana/kit";
import type { AccountState } from "./accounts.ts";
import { describeTransactionError, transactionErrorToJson, type TransactionErrorJson } from "./errors.ts";
import { decodeWireTransaction, feeForMessage, type WireTransaction } from "./wire.ts";

export interface LocalSolanaOptions {
  /** Milliseconds per slot; 0 advances slots only through `advanceSlot` / `expireBlockhashes`. Default 400 (mainnet pace). */
  slotMs?: number;
  /** Blocks a blockhash stays valid for after the block that produced it. Default 150, as on mainnet. */
  blockhashValiditySlots?: number;
}

/** A JSON-RPC error with Solana's codes (e.g. -32002 preflight failure). */
export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
  }
}

export interface LandedTransaction {
  signature: string;
  slot: bigint;
  blockTime: number;
  err: TransactionErrorJson | null;
  logs: string[];
  unitsConsumed: bigint;
  fee: bigint;
  /** Absent for airdrops, which litesvm credits without a transaction of ours. */
  wire?: WireTransaction;
  preBalances: bigint[];
  postBalances: bigint[];
}

export interface SimulationResult {
  err: TransactionErrorJson | null;
  logs: string[];
  unitsConsumed: bigint;
  replacementBlockhash: { blockhash: string; lastValidBlockHeight: bigint } | null;
  postAccounts: Map<string, AccountState>;
}

/** The parts of litesvm's native binding that take raw transaction bytes (the kit wrapper wants kit objects). */
interface NativeLiteSvm {
  sendVersionedTransaction(bytes: Uint8Array): unknown;
  sendLegacyTransaction(bytes: Uint8Array): unknown;
  simulateVersionedTransaction(bytes: Uint8Array): unknown;
  simulateLegacyTransaction(bytes: Uint8Array): unknown;
  getTransaction(signature: Uint8Array): unknown;
  setSigverify(on: boolean): void;
}

interface ExecutionMeta {
  logs(): string[];
  computeUnitsConsumed(): bigint;
}
interface NativeFailure {
  err(): unknown;
  meta(): ExecutionMeta;
}
type NativeOutcome = TransactionMetadata | NativeFailure;
interface NativeSimulation {
  meta(): ExecutionMeta;
  postAccounts(): {
    address: Uint8Array;
    account(): { data(): Uint8Array; executable(): boolean; lamports(): bigint; owner(): Uint8Array };
  }[];
}

/** Events: `landed` (LandedTransaction), `slot` (slot: bigint). */
export class LocalSolana extends EventEmitter {
  readonly svm: LiteSVM;
  private readonly native: NativeLiteSvm;
  private readonly validity: bigint;
  private currentSlot = 1n;
  /** blockhash -> last block height at which a transaction using it may land. */
  private readonly blockhashes = new Map<string, bigint>();
  private latest!: string;
  private readonly landed = new Map<string, LandedTransaction>();
  /** Transactions accepted while landing is paused, in arrival order. */
  private held: Uint8Array[] | undefined;
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(opts: LocalSolanaOptions = {}) {
    super();
    // The blockhash rule (recent hashes valid for a window of blocks) is enforced here, not by litesvm,
    // which only accepts its single latest hash.
    this.svm = new LiteSVM().withBlockhashCheck(false).withSigverify(true);
    this.native = (this.svm as unknown as { inner: NativeLiteSvm }).inner;
    this.validity = BigInt(opts.blockhashValiditySlots ?? 150);
    this.produceBlock();
    const slotMs = opts.slotMs ?? 400;
    if (slotMs > 0) {
      this.timer = setInterval(() => this.advanceSlot(), slotMs);
      this.timer.unref();
    }
  }

  get slot(): bigint {
    return this.currentSlot;
  }

  /** Every slot produces a block here, so block height equals slot. */
  get blockHeight(): bigint {
    return this.currentSlot;
  }

  get transactionCount(): number {
    return this.landed.size;
  }

  latestBlockhash(): { blockhash: Blockhash; lastValidBlockHeight: bigint } {
    return { blockhash: this.latest as Blockhash, lastValidBlockHeight: this.blockhashes.get(this.latest)! };
  }

  isBlockhashValid(blockhash: string): boolean {
    const lastValid = this.blockhashes.get(blockhash);
    return lastValid !== undefined && lastValid >= this.blockHeight;
  }

  advanceSlot(): void {
    this.currentSlot++;
    this.produceBlock();
    this.emit("slot", this.currentSlot);
  }

  /** Jumps past the validity window: every blockhash handed out so far stops being valid. */
  expireBlockhashes(): void {
    this.currentSlot += this.validity + 1n;
    this.produceBlock();
    this.emit("slot", this.currentSlot);
  }

  /** Sent transactions are accepted but do not land until `resumeLanding` (a congested or slow cluster). */
  pauseLanding(): void {
    this.held ??= [];
  }

  /**
   * Lands every held transaction in arrival order; those whose blockhash expired meanwhile are dropped.
   * With `drop`, every held transaction is lost instead, as a congested cluster loses them: only a re-send lands it.
   */
  resumeLanding(opts: { drop?: boolean } = {}): void {
    const held = this.held ?? [];
    this.held = undefined;
    if (!opts.drop) for (const bytes of held) this.land(bytes);
  }

  status(signature: string): LandedTransaction | undefined {
    return this.landed.get(signature);
  }

  airdrop(address: Address, amount: bigint): string {
    const result = this.svm.airdrop(address, lamports(amount));
    if (!(result instanceof TransactionMetadata)) throw new RpcError(-32603, `airdrop failed: ${String(result)}`);
    const signature = getBase58Decoder().decode(result.signature());
    // Recorded as landed so that clients confirming the airdrop see it.
    this.landed.set(signature, {
      signature,
      slot: this.currentSlot,
      blockTime: nowSeconds(),
      err: null,
      logs: result.logs(),
      unitsConsumed: result.computeUnitsConsumed(),
      fee: 0n,
      preBalances: [],
      postBalances: [],
    });
    this.emit("landed", this.landed.get(signature));
    return signature;
  }

  simulate(
    bytes: Uint8Array,
    opts: { sigVerify?: boolean; replaceRecentBlockhash?: boolean; accounts?: string[] } = {},
  ): SimulationResult {
    if (opts.sigVerify && opts.replaceRecentBlockhash) {
      throw new RpcError(-32602, "sigVerify may not be used with replaceRecentBlockhash");
    }
    const wire = decodeOrThrow(bytes);
    const result = (err: TransactionErrorJson | null, logs: string[] = [], units = 0n): SimulationResult => ({
      err,
      logs,
      unitsConsumed: units,
      replacementBlockhash: opts.replaceRecentBlockhash ? this.latestBlockhash() : null,
      postAccounts: new Map(),
    });
    if (!opts.replaceRecentBlockhash && !this.isBlockhashValid(wire.blockhash)) return result("BlockhashNotFound");
    if (this.landed.has(wire.signature)) return result("AlreadyProcessed");
    this.native.setSigverify(opts.sigVerify ?? false);
    let outcome: NativeSimulation | NativeFailure;
    try {
      outcome = (isLegacy(wire) ? this.native.simulateLegacyTransaction(bytes) : this.native.simulateVersionedTransaction(bytes)) as
        | NativeSimulation
        | NativeFailure;
    } finally {
      this.native.setSigverify(true);
    }
    if ("err" in outcome) {
      const meta = outcome.meta();
      return result(transactionErrorToJson(outcome.err()), meta.logs(), meta.computeUnitsConsumed());
    }
    const meta = outcome.meta();
    const sim = result(null, meta.logs(), meta.computeUnitsConsumed());
    const wanted = new Set(opts.accounts ?? []);
    if (wanted.size > 0) {
      for (const p of outcome.postAccounts()) {
        const address = getBase58Decoder().decode(p.address) as Address;
        if (!wanted.has(address)) continue;
        const a = p.account();
        const data = a.data();
        sim.postAccounts.set(address, {
          exists: true,
          data,
          executable: a.executable(),
          lamports: a.lamports(),
          programAddress: getBase58Decoder().decode(a.owner()) as Address,
        });
      }
      // Accounts the transaction does not touch keep their current state.
      for (const address of wanted) if (!sim.postAccounts.has(address)) sim.postAccounts.set(address, this.svm.getAccount(address as Address));
    }
    return sim;
  }

  /** `sendTransaction`: preflight (unless skipped), then land now or, while paused, later. Returns the signature. */
  send(bytes: Uint8Array, opts: { skipPreflight?: boolean } = {}): string {
    const wire = decodeOrThrow(bytes);
    if (!opts.skipPreflight) {
      const sim = this.simulate(bytes, { sigVerify: true });
      if (sim.err === "SignatureFailure") throw new RpcError(-32003, "Transaction signature verification failure");
      if (sim.err !== null) {
        throw new RpcError(-32002, `Transaction simulation failed: ${describeTransactionError(sim.err)}`, {
          accounts: null,
          err: sim.err,
          innerInstructions: null,
          logs: sim.logs,
          replacementBlockhash: null,
          returnData: null,
          unitsConsumed: Number(sim.unitsConsumed),
        });
      }
    }
    if (this.held) {
      if (!this.held.some((b) => decodeWireTransaction(b).signature === wire.signature)) this.held.push(bytes);
    } else {
      this.land(bytes);
    }
    return wire.signature;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.removeAllListeners();
  }

  /**
   * Executes a transaction as a leader would. It lands (with or without an error, fee charged) or is
   * dropped without trace (expired blockhash, bad signature, fee payer cannot pay, already processed),
   * exactly the cases in which a real cluster never records it.
   */
  private land(bytes: Uint8Array): void {
    const wire = decodeWireTransaction(bytes);
    if (this.landed.has(wire.signature) || !this.isBlockhashValid(wire.blockhash)) return;
    const accounts = wire.message.staticAccounts;
    const balance = (a: Address) => BigInt(this.svm.getBalance(a) ?? 0n);
    const preBalances = accounts.map(balance);
    const outcome = (isLegacy(wire) ? this.native.sendLegacyTransaction(bytes) : this.native.sendVersionedTransaction(bytes)) as NativeOutcome;
    const failed = "err" in outcome;
    if (failed && !this.native.getTransaction(new Uint8Array(getBase58Encoder().encode(wire.signature)))) return;
    const meta = (failed ? outcome.meta() : outcome) as ExecutionMeta;
    const landed: LandedTransaction = {
      signature: wire.signature,
      slot: this.currentSlot,
      blockTime: nowSeconds(),
      err: failed ? transactionErrorToJson(outcome.err()) : null,
      logs: meta.logs(),
      unitsConsumed: meta.computeUnitsConsumed(),
      fee: feeForMessage(wire.message),
      wire,
      preBalances,
      postBalances: accounts.map(balance),
    };
    this.landed.set(wire.signature, landed);
    this.emit("landed", landed);
  }

  private produceBlock(): void {
    this.svm.warpToSlot(this.currentSlot);
    this.svm.expireBlockhash();
    this.latest = this.svm.latestBlockhash();
    this.blockhashes.set(this.latest, this.blockHeight + this.validity);
    for (const [hash, lastValid] of this.blockhashes) if (lastValid < this.blockHeight) this.blockhashes.delete(hash);
  }
}

function decodeOrThrow(bytes: Uint8Array): WireTransaction {
  try {
    return decodeWireTransaction(bytes);
  } catch (e) {
    throw new RpcError(-32602, `invalid transaction: failed to deserialize VersionedTransaction: ${(e as Error).message}`);
  }
}

const isLegacy = (wire: WireTransaction) => wire.message.version === "legacy";
const nowSeconds = () => Math.floor(Date.now() / 1000);
