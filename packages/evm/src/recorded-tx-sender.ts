/**
 * One key whose transactions are recorded by the caller before they are sent (the relay's anchoring):
 * sign, record, send the recorded bytes as often as needed, and ask `outcome` whether they were mined,
 * are pending, or were dropped; only a dropped one is signed anew. One left pending by a fee rise is
 * replaced (same nonce, same call, higher fees), the replacement recorded before it is sent.
 *
 * Nonces come from the chain's pending count at signing time, not a local counter: a transaction
 * signed but never sent (its caller crashed or gave up) leaves no gap that stalls later ones; it is
 * dropped once another takes its nonce. Signing is serialised so two never share a nonce.
 */
import type { Address, Hex } from "viem";
import { privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import { txFeesOf, type RecordedTx, type TxOutcome } from "./recorded-tx.ts";
import { replacementDueAt, signReplacement } from "./replacement.ts";
import { sendRawTransaction, type SendResult } from "./send.ts";
import { EvmSigner, type SignerChain, type TxRequest } from "./signer-pool.ts";
import { txOutcome } from "./tx-outcome.ts";

export interface RecordedTxSenderOptions {
  /** A transaction still pending this long after signing, and paying less than the chain now asks, is replaced. */
  replaceAfterMs?: number;
  /** Between looks at the chain while waiting; 50 ms suits local chains, about a block time suits real ones. */
  pollingIntervalMs?: number;
  /** The longest one `waitSettled` lasts. */
  receiptTimeoutMs?: number;
}

export class RecordedTxSender {
  readonly signer: EvmSigner;
  readonly replaceAfterMs: number;
  private readonly pollingIntervalMs: number;
  private readonly receiptTimeoutMs: number;
  /** For estimates only: viem then includes fees, so the node refuses a key without gas money here. */
  private readonly account: PrivateKeyAccount;
  private signing: Promise<unknown> = Promise.resolve();

  constructor(
    privateKey: Hex,
    private readonly chain: SignerChain,
    opts: RecordedTxSenderOptions = {},
  ) {
    this.signer = new EvmSigner(privateKey, chain);
    this.account = privateKeyToAccount(privateKey);
    this.replaceAfterMs = opts.replaceAfterMs ?? 60_000;
    this.pollingIntervalMs = opts.pollingIntervalMs ?? 1000;
    this.receiptTimeoutMs = opts.receiptTimeoutMs ?? 120_000;
  }

  get address(): Address {
    return this.signer.address;
  }

  /** The gas `call` needs when this key sends it; throws (a revert, no gas money) before anything is signed. */
  estimateGas(call: { to: Address; data: Hex }): Promise<bigint> {
    return this.chain.client.estimateGas({ account: this.account, ...call });
  }

  /** Signs `request` at the next pending nonce with today's fees; nothing leaves the process. */
  sign(request: TxRequest): Promise<RecordedTx> {
    const task = this.signing.then(() => this.signNow(request));
    this.signing = task.catch(() => undefined);
    return task;
  }

  private async signNow(request: TxRequest): Promise<RecordedTx> {
    const [nonce, quote] = await Promise.all([
      this.chain.client.getTransactionCount({ address: this.address, blockTag: "pending" }),
      this.chain.fees.quote(),
    ]);
    const tx = await this.signer.sign(request, quote, nonce);
    return { ...tx, from: this.address, gas: request.gas.toString(), fees: txFeesOf(quote), signedAt: Date.now() };
  }

  /**
   * A replacement for `stuck` once it has been pending `replaceAfterMs` and pays less than the chain
   * now asks; otherwise undefined. `call` is the one `stuck` was signed for (see signReplacement).
   */
  async replacement(stuck: RecordedTx, call: { to: Address; data: Hex }): Promise<RecordedTx | undefined> {
    if (Date.now() < replacementDueAt(stuck, this.replaceAfterMs)) return undefined;
    return signReplacement(this.signer, stuck, call, this.chain.fees);
  }

  /** Sends the recorded bytes; the same bytes may go any number of times. */
  send(tx: RecordedTx): Promise<SendResult> {
    return sendRawTransaction(this.chain.client, tx.raw);
  }

  outcome(tx: RecordedTx): Promise<TxOutcome> {
    return txOutcome(this.chain.client, tx);
  }

  /**
   * Polls until `tx` (or one it replaced) is mined or dropped. Still "pending" past `receiptTimeoutMs`,
   * or once `tx` is due for a look at its fees, so the caller can replace it.
   */
  async waitSettled(tx: RecordedTx): Promise<TxOutcome> {
    const start = Date.now();
    const replaceDue = replacementDueAt(tx, this.replaceAfterMs);
    const giveUpAt = Math.min(start + this.receiptTimeoutMs, replaceDue > start ? replaceDue : Infinity);
    for (;;) {
      const outcome = await this.outcome(tx);
      if (outcome.state !== "pending" || Date.now() >= giveUpAt) return outcome;
      await new Promise((resolve) => setTimeout(resolve, this.pollingIntervalMs));
    }
  }
}
