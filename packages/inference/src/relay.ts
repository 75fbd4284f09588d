/**
 * The relay client: SettlementRelay's ABI, the calls the worker makes, and what their failures mean
 * for anchoring. The transactions themselves (signing at the pending nonce, fee replacement, sending,
 * mined / pending / dropped) are @facilitator/evm's RecordedTxSender.
 *
 * Sending is split so the caller can persist between steps (worker.ts): `prepare` simulates the call
 * and signs it (nothing leaves the process), the caller records the signed transaction, `broadcast`
 * sends exactly those bytes, and `outcome` tells whether they were mined, are still pending, or can
 * never be mined, in which case, and only then, the caller may sign again. One that a fee rise left
 * pending is replaced (`replacement`): same nonce and call, so the batch is still anchored once.
 */
import {
  BaseError,
  ContractFunctionRevertedError,
  createPublicClient,
  defineChain,
  encodeFunctionData,
  http,
  InsufficientFundsError,
  keccak256,
  parseAbi,
  parseAbiItem,
  toHex,
  type Address,
  type Hex,
  type PublicClient,
} from "viem";
import { FeeOracle, lacksFunds, RecordedTxSender, ReplacementCallError, type TxOutcome } from "@facilitator/evm";
import type { StoredTx } from "./records.ts";

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

export class RelayClient {
  readonly relayAddress: Address;
  readonly network: string;
  readonly chainId: number;
  private readonly client: PublicClient;
  private readonly sender: RecordedTxSender;

  constructor(opts: RelayClientOptions) {
    this.relayAddress = opts.relayAddress;
    this.network = opts.network;
    this.chainId = opts.chainId;
    const pollingIntervalMs = opts.pollingIntervalMs ?? 1000;
    const chain = defineChain({
      id: opts.chainId,
      name: opts.network,
      nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
      rpcUrls: { default: { http: [opts.rpcUrl] } },
    });
    this.client = createPublicClient({ chain, transport: http(opts.rpcUrl, { retryCount: 2 }), pollingInterval: pollingIntervalMs }) as PublicClient;
    // No fee cache: relay transactions are few, and a replacement must see today's fees.
    const fees = new FeeOracle(this.client, 0);
    this.sender = new RecordedTxSender(
      opts.relayerKey,
      { client: this.client, chainId: opts.chainId, fees },
      { pollingIntervalMs, receiptTimeoutMs: opts.receiptTimeoutMs, replaceAfterMs: opts.replaceAfterMs },
    );
  }

  get relayerAddress(): Address {
    return this.sender.address;
  }

  /** Simulates `call` from the relayer (a revert costs nothing here), then signs it with a quarter more gas than estimated. */
  async prepare(call: RelayCall): Promise<StoredTx> {
    const data = encodeCall(call);
    let gas: bigint;
    try {
      await this.client.simulateContract({ address: this.relayAddress, abi: SETTLEMENT_RELAY_ABI, account: this.relayerAddress, ...call } as never);
      gas = await this.sender.estimateGas({ to: this.relayAddress, data });
    } catch (e) {
      throw classify(e, `simulating ${call.functionName}`);
    }
    return this.sender.sign({ to: this.relayAddress, data, gas: (gas * 125n) / 100n }).catch((e: unknown) => {
      throw classify(e, `signing ${call.functionName}`);
    });
  }

  /**
   * A replacement for `stuck` (same nonce, same call, higher fees) when it has been pending for
   * `replaceAfterMs` and pays less than the chain now asks; otherwise undefined. The caller records
   * it before sending it, as with `prepare`. `call` must be the call `stuck` was signed for.
   */
  replacement(call: RelayCall, stuck: StoredTx): Promise<StoredTx | undefined> {
    return this.sender.replacement(stuck, { to: this.relayAddress, data: encodeCall(call) }).catch((e: unknown) => {
      throw classify(e, `replacing ${stuck.hash}`);
    });
  }

  /**
   * Sends the signed bytes. "Already known", "nonce too low" and "replacement underpriced" are not
   * errors here (the transaction, or another of ours at its nonce, is mined or in the pool): `outcome`
   * decides. A relayer without the money for gas counts toward parking. Other refusals are retried:
   * a fee cap below the base fee is cured by `replacement`; the rest (a node's own limits) show in
   * the worker's `deferred` events for an operator.
   */
  async broadcast(tx: StoredTx): Promise<void> {
    const sent = await this.sender.send(tx);
    if (sent.kind === "accepted" || sent.kind === "nonceTooLow" || sent.kind === "nonceTaken") return;
    if (lacksFunds(sent)) throw new AnchorError("relayer_insufficient_funds", `broadcasting: the relayer cannot pay for gas (${sent.message})`, false);
    throw new AnchorError(sent.kind === "rejected" ? "relay_tx_refused" : "rpc_unavailable", `broadcasting ${tx.hash}: ${sent.message}`, true);
  }

  /** Mined (by `tx` or a transaction it replaced), pending, or dropped (its nonce went elsewhere). */
  outcome(tx: StoredTx): Promise<TxOutcome> {
    return this.sender.outcome(tx).catch((e: unknown) => {
      throw classify(e, "reading the transaction outcome");
    });
  }

  /**
   * Polls until `tx` (or one it replaced) is mined or dropped. Past `receiptTimeoutMs`, or when `tx`
   * becomes due for a look at its fees (`replaceAfterMs` after signing), a transient failure: the
   * step resumes later, replacing `tx` if fees left it behind.
   */
  async waitSettled(tx: StoredTx): Promise<Exclude<TxOutcome, { state: "pending" }>> {
    const outcome = await this.sender.waitSettled(tx).catch((e: unknown) => {
      throw classify(e, "reading the transaction outcome");
    });
    if (outcome.state === "pending") throw new AnchorError("tx_pending", `${tx.hash} still pending`, true);
    return outcome;
  }

  /** The transaction that anchored `root`, read from the relay's own events (for a root found already anchored). */
  async findBatchAnchor(root: Hex): Promise<{ transactionHash: Hex; blockNumber: number } | undefined> {
    const block = await this.client.readContract({ address: this.relayAddress, abi: SETTLEMENT_RELAY_ABI, functionName: "anchoredAt", args: [root] });
    if (block === 0n) return undefined;
    const logs = await this.client.getLogs({
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

const encodeCall = (call: RelayCall): Hex => encodeFunctionData({ abi: SETTLEMENT_RELAY_ABI, ...call } as never);

/** Maps a viem failure to an AnchorError: chain-side refusals count toward parking, transport trouble does not. */
export function classify(e: unknown, doing: string): AnchorError {
  if (e instanceof AnchorError) return e;
  if (e instanceof ReplacementCallError) return new AnchorError("batch_inconsistent", e.message, false, { cause: e });
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
