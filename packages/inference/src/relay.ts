/**
 * The relay client: talks to SettlementRelay through one relayer key.
 *
 * Sending is split so the caller can persist between steps (worker.ts): `prepare` simulates the call
 * and signs it (nothing leaves the process), the caller records the signed bytes and hash, then
 * `broadcast` sends exactly those bytes, and `outcome` tells whether they were mined, are still
 * pending, or can never be mined (their nonce went to another transaction), in which case, and only
 * then, the caller may sign again. Nonces come from the chain's pending count at signing time, so a
 * transaction that was signed and never sent leaves no gap that stalls later ones.
 *
 * A transaction left behind by a fee rise is replaced: same nonce, same call, higher fees (see
 * `replacement`). Only one transaction per nonce can ever be mined, so a replacement cannot anchor
 * twice; it lists the hashes it replaced, and `outcome` looks for a receipt of any of them.
 */
import {
  BaseError,
  ContractFunctionRevertedError,
  createPublicClient,
  createWalletClient,
  defineChain,
  encodeFunctionData,
  http,
  InsufficientFundsError,
  keccak256,
  parseAbi,
  parseAbiItem,
  parseTransaction,
  toHex,
  type Address,
  type Chain,
  type Hex,
  type PublicClient,
  type TransactionReceipt,
} from "viem";
import { privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import { sendRawTransaction } from "@facilitator/evm";

export const SETTLEMENT_RELAY_ABI = parseAbi([
  "function RELAYER_ROLE() view returns (bytes32)",
  "function DEFAULT_ADMIN_ROLE() view returns (bytes32)",
  "function hasRole(bytes32 role, address account) view returns (bool)",
  "function grantRole(bytes32 role, address account)",
  "function revokeRole(bytes32 role, address account)",
  "function settle(bytes32 inputHash, bytes32 outputHash)",
  "function settleWithMetadata(bytes32 inputHash, bytes32 outputHash, string modelInfo, string inputData, string outputData)",
  "function settleBatch(bytes32 merkleRoot, uint256 batchSize, bytes walrusBlobId)",
  "function anchoredAt(bytes32 merkleRoot) view returns (uint256)",
  "struct Inference { bytes32 teeId; bytes32 inputHash; bytes32 outputHash; uint256 timestamp; string settlementType; bytes32 metadataHash; bytes teeSignature; }",
  "function inferenceLeaf(Inference record) pure returns (bytes32)",
  "function verifyInference(bytes32 root, bytes32[] proof, Inference record) view returns (bool)",
  "function inferenceMetadataHash(string modelInfo, string inputData, string outputData) pure returns (bytes32)",
  "function teeAttestationDigest(bytes32 teeId, bytes32 inputHash, bytes32 outputHash, uint256 timestamp, string settlementType, bytes32 metadataHash) pure returns (bytes32)",
  "function TEE_DOMAIN_SEPARATOR() view returns (bytes32)",
  "function verifyTeeSignature(address signer, Inference record) pure returns (bool)",
  "event Settlement(bytes32 indexed inputHash, bytes32 indexed outputHash)",
  "event SettlementWithMetadata(bytes32 indexed inputHash, bytes32 indexed outputHash, string modelInfo, string inputData, string outputData)",
  "event BatchSettlement(bytes32 indexed merkleRoot, uint256 batchSize, bytes walrusBlobId)",
  "error AccessControlUnauthorizedAccount(address account, bytes32 neededRole)",
  "error RootAlreadyAnchored(bytes32 merkleRoot, uint256 blockNumber)",
  "error EmptyBatch()",
  "error ZeroRoot()",
]);

const BATCH_SETTLEMENT_EVENT = parseAbiItem("event BatchSettlement(bytes32 indexed merkleRoot, uint256 batchSize, bytes walrusBlobId)");

/** `keccak256("RELAYER_ROLE")`. */
export const RELAYER_ROLE: Hex = keccak256(toHex("RELAYER_ROLE"));

/** A failure of one anchoring step. `transient` ones are retried without limit; the others count toward parking. */
export class AnchorError extends Error {
  constructor(
    readonly reason: string,
    message: string,
    readonly transient: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "AnchorError";
  }
}

/** What a relay transaction pays per gas, as decimal strings so a stored batch stays plain JSON. */
export type TxFees = { maxFeePerGas: string; maxPriorityFeePerGas: string } | { gasPrice: string };

export interface SignedTx {
  hash: Hex;
  raw: Hex;
  nonce: number;
  from: Address;
  /** Gas limit, fees and signing time: what a replacement needs (absent on transactions recorded before replacement existed). */
  gas?: string;
  fees?: TxFees;
  signedAt?: number;
  /** Earlier transactions at this nonce that this one replaced; any of them may be the one mined. */
  replaced?: Hex[];
}

export type TxOutcome =
  | { state: "mined"; receipt: TransactionReceipt }
  | { state: "pending" }
  /** The nonce was consumed by another transaction: this one can never be mined. */
  | { state: "dropped" };

export type RelayCall =
  | { functionName: "settleBatch"; args: readonly [Hex, bigint, Hex] }
  | { functionName: "settle"; args: readonly [Hex, Hex] }
  | { functionName: "settleWithMetadata"; args: readonly [Hex, Hex, string, string, string] };

export interface RelayClientOptions {
  rpcUrl: string;
  chainId: number;
  /** The SettlementRelay contract. */
  relayAddress: Address;
  /** Holds RELAYER_ROLE on the relay. Never logged. */
  relayerKey: Hex;
  /** The network name recorded in anchors (e.g. `base-sepolia`). */
  network: string;
  /** Receipt polling; 50 ms suits local chains, about a block time suits real ones. */
  pollingIntervalMs?: number;
  /** How long one wait for a receipt may last before the step is retried later. */
  receiptTimeoutMs?: number;
  /** A transaction still pending this long after signing, and paying less than the chain now asks, is replaced. */
  replaceAfterMs?: number;
}

/** Most pools take a replacement only at 10% over the old fees or more; 12.5% leaves room for rounding. */
const bumped = (wei: bigint) => wei + (wei + 7n) / 8n;
const maxOf = (a: bigint, b: bigint) => (a > b ? a : b);

/**
 * Fees for replacing a pending transaction, or undefined when it pays what the chain asks `now` and
 * waiting (and re-sending the same bytes) is the right move. A replacement pays the larger of
 * today's fees and the stuck ones raised by 12.5%, on every field.
 */
export function replacementFees(stuck: TxFees, now: TxFees): TxFees | undefined {
  if ("gasPrice" in stuck && "gasPrice" in now) {
    const [old, price] = [BigInt(stuck.gasPrice), BigInt(now.gasPrice)];
    return price > old ? { gasPrice: maxOf(price, bumped(old)).toString() } : undefined;
  }
  if ("maxFeePerGas" in stuck && "maxFeePerGas" in now) {
    const [oldCap, oldTip] = [BigInt(stuck.maxFeePerGas), BigInt(stuck.maxPriorityFeePerGas)];
    const [cap, tip] = [BigInt(now.maxFeePerGas), BigInt(now.maxPriorityFeePerGas)];
    if (cap <= oldCap && tip <= oldTip) return undefined;
    const newTip = maxOf(tip, bumped(oldTip));
    return { maxFeePerGas: maxOf(maxOf(cap, bumped(oldCap)), newTip).toString(), maxPriorityFeePerGas: newTip.toString() };
  }
  return undefined; // the chain changed fee markets under a pending transaction: leave it be
}

export class RelayClient {
  readonly relayAddress: Address;
  readonly network: string;
  readonly chainId: number;
  private readonly account: PrivateKeyAccount;
  private readonly chain: Chain;
  private readonly publicClient;
  private readonly walletClient;
  private readonly receiptTimeoutMs: number;
  private readonly pollingIntervalMs: number;
  private readonly replaceAfterMs: number;
  private signing: Promise<unknown> = Promise.resolve();

  constructor(opts: RelayClientOptions) {
    this.relayAddress = opts.relayAddress;
    this.network = opts.network;
    this.chainId = opts.chainId;
    this.account = privateKeyToAccount(opts.relayerKey);
    this.pollingIntervalMs = opts.pollingIntervalMs ?? 1000;
    this.receiptTimeoutMs = opts.receiptTimeoutMs ?? 120_000;
    this.replaceAfterMs = opts.replaceAfterMs ?? 60_000;
    this.chain = defineChain({
      id: opts.chainId,
      name: opts.network,
      nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
      rpcUrls: { default: { http: [opts.rpcUrl] } },
    });
    const transport = http(opts.rpcUrl, { retryCount: 2 });
    this.publicClient = createPublicClient({ chain: this.chain, transport, pollingInterval: this.pollingIntervalMs });
    this.walletClient = createWalletClient({ account: this.account, chain: this.chain, transport, pollingInterval: this.pollingIntervalMs });
  }

  get relayerAddress(): Address {
    return this.account.address;
  }

  /**
   * Simulates `call` from the relayer (a revert costs nothing here) and signs it with the next
   * pending nonce. Signing is serialised within this process so two calls never share a nonce.
   */
  prepare(call: RelayCall): Promise<SignedTx> {
    const task = this.signing.then(() => this.prepareNow(call));
    this.signing = task.catch(() => undefined);
    return task;
  }

  private async prepareNow(call: RelayCall): Promise<SignedTx> {
    const data = encodeFunctionData({ abi: SETTLEMENT_RELAY_ABI, ...call } as never);
    let gas: bigint;
    try {
      await this.publicClient.simulateContract({ address: this.relayAddress, abi: SETTLEMENT_RELAY_ABI, account: this.account, ...call } as never);
      gas = await this.publicClient.estimateGas({ account: this.account, to: this.relayAddress, data });
    } catch (e) {
      throw classify(e, `simulating ${call.functionName}`);
    }
    try {
      const nonce = await this.publicClient.getTransactionCount({ address: this.account.address, blockTag: "pending" });
      const request = await this.walletClient.prepareTransactionRequest({
        account: this.account,
        chain: this.chain,
        to: this.relayAddress,
        data,
        nonce,
        gas: (gas * 125n) / 100n,
      });
      const raw = await this.account.signTransaction(request as never);
      const fees: TxFees =
        request.maxFeePerGas !== undefined
          ? { maxFeePerGas: request.maxFeePerGas.toString(), maxPriorityFeePerGas: (request.maxPriorityFeePerGas ?? 0n).toString() }
          : { gasPrice: (request.gasPrice ?? 0n).toString() };
      return { hash: keccak256(raw), raw, nonce, from: this.account.address, gas: request.gas!.toString(), fees, signedAt: Date.now() };
    } catch (e) {
      throw classify(e, `signing ${call.functionName}`);
    }
  }

  /**
   * A replacement for `stuck` (same nonce, same call, higher fees) when it has been pending for
   * `replaceAfterMs` and pays less than the chain now asks; otherwise undefined. The caller records
   * it before sending it, as with `prepare`. `call` must be the call `stuck` was signed for.
   */
  async replacement(call: RelayCall, stuck: SignedTx): Promise<SignedTx | undefined> {
    if (!stuck.fees || !stuck.gas || stuck.signedAt === undefined || Date.now() - stuck.signedAt < this.replaceAfterMs) return undefined;
    try {
      const estimate = await this.publicClient.estimateFeesPerGas({ type: "gasPrice" in stuck.fees ? "legacy" : "eip1559" });
      const now: TxFees =
        estimate.maxFeePerGas !== undefined
          ? { maxFeePerGas: estimate.maxFeePerGas.toString(), maxPriorityFeePerGas: estimate.maxPriorityFeePerGas!.toString() }
          : { gasPrice: estimate.gasPrice!.toString() };
      const fees = replacementFees(stuck.fees, now);
      if (!fees) return undefined;
      const feeFields = "gasPrice" in fees ? { gasPrice: BigInt(fees.gasPrice) } : { maxFeePerGas: BigInt(fees.maxFeePerGas), maxPriorityFeePerGas: BigInt(fees.maxPriorityFeePerGas) };
      const data = encodeFunctionData({ abi: SETTLEMENT_RELAY_ABI, ...call } as never);
      if (parseTransaction(stuck.raw).data !== data) throw new AnchorError("batch_inconsistent", `the call rebuilt to replace ${stuck.hash} differs from the one it carries`, false);
      const raw = await this.account.signTransaction({
        chainId: this.chainId,
        to: this.relayAddress,
        data,
        nonce: stuck.nonce,
        gas: BigInt(stuck.gas),
        ...feeFields,
      } as never);
      return {
        hash: keccak256(raw),
        raw,
        nonce: stuck.nonce,
        from: stuck.from,
        gas: stuck.gas,
        fees,
        signedAt: Date.now(),
        replaced: [...(stuck.replaced ?? []), stuck.hash],
      };
    } catch (e) {
      throw classify(e, `replacing ${stuck.hash}`);
    }
  }

  /**
   * Sends the signed bytes. "Already known", "nonce too low" and "replacement underpriced" are not
   * errors here (the transaction, or another of ours at its nonce, is mined or in the pool): `outcome`
   * decides. A relayer without the money for gas counts toward parking. Other refusals are retried:
   * a fee cap below the base fee is cured by `replacement`; the rest (a node's own limits) show in
   * the worker's `deferred` events for an operator.
   */
  async broadcast(tx: SignedTx): Promise<void> {
    const sent = await sendRawTransaction(this.publicClient as PublicClient, tx.raw);
    if (sent.kind === "accepted" || sent.kind === "nonceTooLow" || sent.kind === "nonceTaken") return;
    if (/insufficient funds|insufficientfunds|exceeds transaction sender account balance/i.test(sent.message)) throw new AnchorError("relayer_insufficient_funds", `broadcasting: the relayer cannot pay for gas (${sent.message})`, false);
    throw new AnchorError(sent.kind === "rejected" ? "relay_tx_refused" : "rpc_unavailable", `broadcasting ${tx.hash}: ${sent.message}`, true);
  }

  /**
   * Mined (by `tx` or a transaction it replaced), pending, or dropped. The nonce is read before the
   * receipts, so "dropped" is never a race.
   */
  async outcome(tx: SignedTx): Promise<TxOutcome> {
    try {
      const confirmedNonce = await this.publicClient.getTransactionCount({ address: tx.from, blockTag: "latest" });
      const receipts = await Promise.all(
        [tx.hash, ...(tx.replaced ?? [])].map((hash) =>
          this.publicClient.getTransactionReceipt({ hash }).catch((e) => {
            if (e instanceof BaseError && e.name === "TransactionReceiptNotFoundError") return undefined;
            throw e;
          }),
        ),
      );
      const receipt = receipts.find((r) => r !== undefined);
      if (receipt) return { state: "mined", receipt };
      return confirmedNonce > tx.nonce ? { state: "dropped" } : { state: "pending" };
    } catch (e) {
      throw classify(e, "reading the transaction outcome");
    }
  }

  /**
   * Polls until `tx` (or one it replaced) is mined or dropped. Past `receiptTimeoutMs`, or when `tx`
   * becomes due for a look at its fees (`replaceAfterMs` after signing), a transient failure: the
   * step resumes later, replacing `tx` if fees left it behind.
   */
  async waitSettled(tx: SignedTx): Promise<Exclude<TxOutcome, { state: "pending" }>> {
    const replaceDue = tx.fees && tx.signedAt !== undefined ? tx.signedAt + this.replaceAfterMs : Infinity;
    const giveUpAt = Math.min(Date.now() + this.receiptTimeoutMs, replaceDue > Date.now() ? replaceDue : Infinity);
    for (;;) {
      const outcome = await this.outcome(tx);
      if (outcome.state !== "pending") return outcome;
      if (Date.now() >= giveUpAt) throw new AnchorError("tx_pending", `${tx.hash} still pending`, true);
      await new Promise((resolve) => setTimeout(resolve, this.pollingIntervalMs));
    }
  }

  /** The transaction that anchored `root`, read from the relay's own events (for a root found already anchored). */
  async findBatchAnchor(root: Hex): Promise<{ transactionHash: Hex; blockNumber: number } | undefined> {
    const block = await this.publicClient.readContract({ address: this.relayAddress, abi: SETTLEMENT_RELAY_ABI, functionName: "anchoredAt", args: [root] });
    if (block === 0n) return undefined;
    const logs = await this.publicClient.getLogs({
      address: this.relayAddress,
      event: BATCH_SETTLEMENT_EVENT,
      args: { merkleRoot: root },
      fromBlock: block,
      toBlock: block,
    });
    const log = logs[0];
    return log ? { transactionHash: log.transactionHash!, blockNumber: Number(log.blockNumber) } : undefined;
  }
}

/** Maps a viem failure to an AnchorError: chain-side refusals count toward parking, transport trouble does not. */
export function classify(e: unknown, doing: string): AnchorError {
  if (e instanceof AnchorError) return e;
  if (e instanceof BaseError) {
    const reverted = e.walk((c) => c instanceof ContractFunctionRevertedError) as ContractFunctionRevertedError | null;
    if (reverted) {
      const name = reverted.data?.errorName;
      if (name === "AccessControlUnauthorizedAccount") {
        return new AnchorError("relayer_not_authorized", `${doing}: the relayer key does not hold RELAYER_ROLE on the relay`, false, { cause: e });
      }
      if (name === "RootAlreadyAnchored") return new AnchorError("root_already_anchored", `${doing}: the root is already anchored`, false, { cause: e });
      return new AnchorError("relay_reverted", `${doing}: the relay reverted (${name ?? reverted.reason ?? reverted.shortMessage})`, false, { cause: e });
    }
    if (e.walk((c) => c instanceof InsufficientFundsError)) {
      return new AnchorError("relayer_insufficient_funds", `${doing}: the relayer cannot pay for gas`, false, { cause: e });
    }
    return new AnchorError("rpc_unavailable", `${doing}: ${e.shortMessage}`, true, { cause: e });
  }
  return new AnchorError("rpc_unavailable", `${doing}: ${(e as Error)?.message ?? String(e)}`, true, { cause: e });
}
