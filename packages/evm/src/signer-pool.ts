/**
 * Facilitator keys of one chain. Each signer signs locally with its own nonce manager and remembers
 * the transactions it sent until they are mined, so one a node dropped can be sent again.
 *
 * Nonce holes (a nonce handed out whose transaction the node refused, while later nonces are already
 * out): we first try to take the nonce back (possible when it was the last one handed out); otherwise
 * we fill the hole with a 0-value transfer to ourselves at that nonce, so later transactions are not
 * stuck behind it. The payment whose transaction was refused is recorded as failed by the caller; its
 * signed bytes can never be mined once the filler holds the nonce.
 */
import secp256k1 from "secp256k1";
import { bytesToHex, getAddress, hexToBytes, keccak256, serializeTransaction, type Address, type Hex, type PublicClient, type TransactionSerializable } from "viem";
import { privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import type { FeeOracle, FeeQuote } from "./fees.ts";
import { NonceManager } from "./nonce-manager.ts";
import { sendRawTransaction } from "./send.ts";

export interface SignedTx {
  hash: Hex;
  raw: Hex;
  nonce: number;
}

export interface TxRequest {
  to: Address;
  data: Hex;
  gas: bigint;
  value?: bigint;
}

export interface SignerChain {
  client: PublicClient;
  chainId: number;
  fees: FeeOracle;
}

export class EvmSigner {
  readonly address: Address;
  readonly nonces: NonceManager;
  /** Settlements this signer is working on now (for least-busy assignment). */
  busy = 0;
  private readonly account: PrivateKeyAccount;
  /** The key as bytes for the native signer. */
  private readonly keyBytes: Uint8Array;
  private readonly inFlight = new Map<number, SignedTx>();
  private repairing?: Promise<void>;

  constructor(
    privateKey: Hex,
    private readonly chain: SignerChain,
  ) {
    this.account = privateKeyToAccount(privateKey);
    this.keyBytes = hexToBytes(privateKey);
    this.address = this.account.address;
    this.nonces = new NonceManager(() => chain.client.getTransactionCount({ address: this.address, blockTag: "pending" }));
  }

  async sign(request: TxRequest, fees: FeeQuote, nonce: number): Promise<SignedTx> {
    const common = { chainId: this.chain.chainId, nonce, to: request.to, data: request.data, gas: request.gas, value: request.value ?? 0n };
    const tx: TransactionSerializable =
      fees.type === "eip1559"
        ? { ...common, type: "eip1559", maxFeePerGas: fees.maxFeePerGas, maxPriorityFeePerGas: fees.maxPriorityFeePerGas }
        : { ...common, type: "legacy", gasPrice: fees.gasPrice };
    // libsecp256k1 (RFC 6979, low s, the same bytes as viem's pure-JS signer) at about a fifth of the CPU.
    const digest = hexToBytes(keccak256(serializeTransaction(tx)));
    const { signature, recid } = secp256k1.ecdsaSign(digest, this.keyBytes);
    const r = bytesToHex(signature.subarray(0, 32));
    const s = bytesToHex(signature.subarray(32, 64));
    const raw = serializeTransaction(tx, fees.type === "eip1559" ? { r, s, yParity: recid } : { r, s, v: BigInt(recid + 27) });
    return { hash: keccak256(raw), raw, nonce };
  }

  /** The transaction went out (or is about to): keep its bytes until it is mined. */
  track(tx: SignedTx): void {
    this.inFlight.set(tx.nonce, tx);
    this.nonces.sent(tx.nonce);
  }

  /** Mined, or its nonce was taken by another transaction: nothing left to re-send. */
  settled(nonce: number): void {
    this.inFlight.delete(nonce);
    this.nonces.sent(nonce);
  }

  /** A transaction of ours at `nonce` is mined, so every lower nonce is used too (a permit before its transfer). */
  minedThrough(nonce: number): void {
    for (const n of [...this.inFlight.keys()]) if (n <= nonce) this.inFlight.delete(n);
    this.nonces.sent(nonce);
  }

  /** The transaction at `nonce` never reached the chain: take the nonce back, or fill the hole. */
  async abandon(nonce: number): Promise<void> {
    this.inFlight.delete(nonce);
    // If the filler cannot be sent now, the hole stays visible to `repair`, which tries again.
    if (this.nonces.giveBack(nonce) === "gap") await this.fill(nonce).catch(() => undefined);
    await this.nonces.resync().catch(() => undefined);
  }

  /** A 0-value transfer to ourselves at `nonce`, so nothing waits behind an unused nonce. */
  private async fill(nonce: number): Promise<void> {
    const tx = await this.sign({ to: this.address, data: "0x", gas: 21_000n }, await this.chain.fees.quote(), nonce);
    const sent = await sendRawTransaction(this.chain.client, tx.raw);
    // "rejected" here is mostly "replacement underpriced": something already holds the nonce, which is all we need.
    if (sent.kind === "accepted" || sent.kind === "unreachable") this.track(tx);
  }

  /**
   * Unsticks this signer's queue: re-sends transactions nodes dropped (same bytes, same hash) and fills
   * holes that nothing will ever fill. Called when a receipt wait stalls; one repair at a time.
   */
  repair(): Promise<void> {
    this.repairing ??= this.repairOnce().finally(() => (this.repairing = undefined));
    return this.repairing;
  }

  private async repairOnce(): Promise<void> {
    const { client } = this.chain;
    const mined = await client.getTransactionCount({ address: this.address, blockTag: "latest" });
    for (const nonce of [...this.inFlight.keys()]) if (nonce < mined) this.inFlight.delete(nonce);
    const waiting = [...this.inFlight.values()].sort((a, b) => a.nonce - b.nonce);
    const known = await Promise.all(waiting.map((tx) => client.request({ method: "eth_getTransactionByHash", params: [tx.hash] })));
    for (const [i, tx] of waiting.entries()) {
      if (known[i]) continue; // pending or mined: nothing to do
      const sent = await sendRawTransaction(client, tx.raw);
      if (sent.kind === "rejected") await this.fill(tx.nonce);
    }
    // Only nonces we handed out: below that, pool entries of an earlier process must not be replaced.
    const next = this.nonces.peek() ?? mined;
    for (let nonce = Math.max(mined, this.nonces.start() ?? next); nonce < next; nonce++) {
      if (!this.inFlight.has(nonce) && !this.nonces.reserved.has(nonce)) await this.fill(nonce);
    }
  }
}

/** The keys of one chain; each settlement goes to the least busy signer (round-robin among equals). */
export class SignerPool {
  readonly signers: readonly EvmSigner[];
  private turn = 0;

  constructor(privateKeys: readonly Hex[], chain: SignerChain) {
    if (privateKeys.length === 0) throw new Error(`chain ${chain.chainId}: at least one signer key is required`);
    this.signers = privateKeys.map((k) => new EvmSigner(k, chain));
  }

  get addresses(): Address[] {
    return this.signers.map((s) => s.address);
  }

  byAddress(address: string): EvmSigner | undefined {
    const a = getAddress(address);
    return this.signers.find((s) => s.address === a);
  }

  /**
   * Runs `work` with the least busy signer, or with the one at `address` when the payment names the
   * account that must send it (an ERC-2612 permit's spender), counted busy for its duration.
   */
  async withSigner<T>(work: (signer: EvmSigner) => Promise<T>, address?: string): Promise<T> {
    const chosen = address ? this.byAddress(address) : this.leastBusy();
    if (!chosen) throw new Error(`${address} is not one of this chain's signers`);
    chosen.busy++;
    try {
      return await work(chosen);
    } finally {
      chosen.busy--;
    }
  }

  private leastBusy(): EvmSigner {
    const n = this.signers.length;
    let chosen = this.signers[this.turn % n]!;
    for (let i = 1; i < n; i++) {
      const s = this.signers[(this.turn + i) % n]!;
      if (s.busy < chosen.busy) chosen = s;
    }
    this.turn++;
    return chosen;
  }
}
