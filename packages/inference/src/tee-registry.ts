/**
 * The TEERegistry contract (contracts/TEERegistry.sol) from the facilitator's side: what it reads
 * (a TEE's entry, a measurement's status, who holds a key) and the registrar's and heartbeat
 * relayer's writes, sent through `RecordedTxSender` of @facilitator/evm with the relayer's key.
 *
 * Every write is simulated first, so a call the contract would refuse costs nothing and comes back
 * as `RegistryError` naming the contract's custom error; gas and fee per gas are capped before
 * anything is signed (a heartbeat is cheap, and the caller of /heartbeat is anonymous).
 */
import {
  BaseError,
  ContractFunctionRevertedError,
  createPublicClient,
  defineChain,
  encodeFunctionData,
  hexToString,
  http,
  type Address,
  type Hex,
  type PublicClient,
} from "viem";
import { FeeOracle, lacksFunds, RecordedTxSender } from "@facilitator/evm";
import { TEE_REGISTRY_ABI } from "@facilitator/tee";

/** A TEE's entry as the contract keeps it; `registeredBlock` 0 means never registered. */
export interface RegistryTee {
  signingKey: Hex;
  scheme: number;
  teeType: number;
  registeredBlock: bigint;
  registeredAt: bigint;
  lastHeartbeat: bigint;
  revokedBlock: bigint;
  measurement: Hex;
  attestationHash: Hex;
  /** The Walrus blob id, decoded from the contract's UTF-8 bytes. */
  attestationBlobId: string;
  endpoint: string;
  paymentAddress: Address;
}

export interface RegistryMeasurement {
  /** 0 none, 1 approved, 2 revoked (MeasurementStatus). */
  status: number;
  approvedBlock: bigint;
  revokedBlock: bigint;
}

/** A write the contract (or the caps) refused, or one that could not be sent; nothing was spent unless `spent`. */
export class RegistryError extends Error {
  constructor(
    /** A reason string: `registry_<ContractError>`, `registry_gas_cap_exceeded`, `registry_fee_cap_exceeded`, ... */
    readonly reason: string,
    message: string,
    /** Trying again later may succeed (RPC unreachable, transaction still pending). */
    readonly transient = false,
  ) {
    super(message);
    this.name = "RegistryError";
  }
}

export type RegistryCall =
  | { functionName: "register"; args: readonly [Hex, number, number, Hex, Hex, Hex, Hex] }
  | { functionName: "describeTee"; args: readonly [Hex, string, Address] }
  | { functionName: "heartbeat"; args: readonly [Hex, bigint, Hex] }
  // The admin's (a client whose writer key holds DEFAULT_ADMIN_ROLE: the deploy and admin commands).
  | { functionName: "approveMeasurement"; args: readonly [number, Hex, string] }
  | { functionName: "revokeMeasurement"; args: readonly [number, Hex] }
  | { functionName: "revokeTee"; args: readonly [Hex] }
  | { functionName: "grantRole" | "renounceRole"; args: readonly [Hex, Address] };

export interface WriteCaps {
  /** Most gas the transaction may need (the estimate plus a quarter). */
  maxGas?: bigint;
  /** Most wei per gas the chain may ask now. */
  maxFeePerGas?: bigint;
}

export interface TeeRegistryClientOptions {
  rpcUrl: string;
  chainId: number;
  address: Address;
  /** Holds REGISTRAR_ROLE and HEARTBEAT_ROLE (the relayer key), or the admin's role; without it the client only reads. Never logged. */
  writerKey?: Hex;
  pollingIntervalMs?: number;
  /** How long a write waits for its receipt. */
  receiptTimeoutMs?: number;
}

export class TeeRegistryClient {
  readonly address: Address;
  readonly client: PublicClient;
  private readonly sender?: RecordedTxSender;
  private readonly fees: FeeOracle;

  constructor(opts: TeeRegistryClientOptions) {
    this.address = opts.address;
    const chain = defineChain({
      id: opts.chainId,
      name: `chain-${opts.chainId}`,
      nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
      rpcUrls: { default: { http: [opts.rpcUrl] } },
    });
    const pollingIntervalMs = opts.pollingIntervalMs ?? 1000;
    this.client = createPublicClient({ chain, transport: http(opts.rpcUrl, { retryCount: 2 }), pollingInterval: pollingIntervalMs }) as PublicClient;
    // No fee cache: writes are few, and the fee cap must be checked against today's fees.
    this.fees = new FeeOracle(this.client, 0);
    if (opts.writerKey) {
      this.sender = new RecordedTxSender(opts.writerKey, { client: this.client, chainId: opts.chainId, fees: this.fees }, { pollingIntervalMs, receiptTimeoutMs: opts.receiptTimeoutMs ?? 30_000 });
    }
  }

  get writerAddress(): Address | undefined {
    return this.sender?.address;
  }

  /** The TEE's entry, or undefined when it was never registered. */
  async getTee(teeId: Hex): Promise<RegistryTee | undefined> {
    const t = await this.client.readContract({ address: this.address, abi: TEE_REGISTRY_ABI, functionName: "getTee", args: [teeId] });
    if (t.registeredBlock === 0n) return undefined;
    return { ...t, attestationBlobId: t.attestationBlobId === "0x" ? "" : hexToString(t.attestationBlobId) };
  }

  measurementStatus(teeType: number, measurement: Hex): Promise<RegistryMeasurement> {
    return this.client.readContract({ address: this.address, abi: TEE_REGISTRY_ABI, functionName: "measurementStatus", args: [teeType, measurement] });
  }

  /** The teeId a key (its registry bytes) is registered under, or undefined. */
  async teeIdOfKey(keyHash: Hex): Promise<Hex | undefined> {
    const id = await this.client.readContract({ address: this.address, abi: TEE_REGISTRY_ABI, functionName: "teeIdByKeyHash", args: [keyHash] });
    return /^0x0{64}$/.test(id) ? undefined : id;
  }

  hasRole(role: Hex, account: Address): Promise<boolean> {
    return this.client.readContract({ address: this.address, abi: TEE_REGISTRY_ABI, functionName: "hasRole", args: [role, account] });
  }

  /** The latest block's timestamp: the clock heartbeat freshness is measured by. */
  async chainTime(): Promise<bigint> {
    return (await this.client.getBlock({ blockTag: "latest" })).timestamp;
  }

  /** Simulates `call` from the writer: the contract's refusal as a RegistryError, or nothing. */
  async simulate(call: RegistryCall): Promise<void> {
    const sender = this.writer();
    try {
      await this.client.simulateContract({ address: this.address, abi: TEE_REGISTRY_ABI, account: sender.address, ...call } as never);
    } catch (e) {
      throw classifyRegistry(e, call.functionName);
    }
  }

  /** Simulates, checks the caps, signs, sends and waits for the receipt of `call`. */
  async write(call: RegistryCall, caps: WriteCaps = {}): Promise<{ transactionHash: Hex; blockNumber: bigint }> {
    const sender = this.writer();
    await this.simulate(call);
    const data = encodeFunctionData({ abi: TEE_REGISTRY_ABI, ...call } as never);
    let gas: bigint;
    try {
      gas = ((await sender.estimateGas({ to: this.address, data })) * 125n) / 100n;
    } catch (e) {
      throw classifyRegistry(e, call.functionName);
    }
    if (caps.maxGas !== undefined && gas > caps.maxGas) {
      throw new RegistryError("registry_gas_cap_exceeded", `${call.functionName} needs ${gas} gas; at most ${caps.maxGas} is spent on it`);
    }
    if (caps.maxFeePerGas !== undefined) {
      const quote = await this.fees.quote();
      const asked = quote.type === "legacy" ? quote.gasPrice : (quote.baseFeePerGas ?? 0n) + quote.maxPriorityFeePerGas;
      if (asked > caps.maxFeePerGas) throw new RegistryError("registry_fee_cap_exceeded", `the chain asks ${asked} wei per gas; at most ${caps.maxFeePerGas} is paid`, true);
    }
    // A transaction dropped because another of this key's took its nonce is signed again, a few times.
    for (let attempt = 0; attempt < 3; attempt++) {
      const tx = await sender.sign({ to: this.address, data, gas });
      const sent = await sender.send(tx);
      if (lacksFunds(sent)) throw new RegistryError("relayer_insufficient_funds", `${call.functionName}: the relayer cannot pay for gas`);
      if (sent.kind === "rejected" || sent.kind === "unreachable") throw new RegistryError("registry_tx_not_sent", `${call.functionName}: ${sent.message}`, true);
      const outcome = await sender.waitSettled(tx);
      if (outcome.state === "pending") throw new RegistryError("registry_tx_pending", `${call.functionName}: transaction ${tx.hash} is still pending`, true);
      if (outcome.state === "dropped") continue;
      if (outcome.receipt.status !== "success") throw new RegistryError("registry_reverted", `${call.functionName}: transaction ${tx.hash} reverted`);
      return { transactionHash: outcome.receipt.transactionHash, blockNumber: outcome.receipt.blockNumber };
    }
    throw new RegistryError("registry_tx_dropped", `${call.functionName}: the transaction kept losing its nonce to another of the relayer's`, true);
  }

  private writer(): RecordedTxSender {
    if (!this.sender) throw new RegistryError("registry_read_only", "this registry client has no writer key");
    return this.sender;
  }
}

/** A viem failure as a RegistryError: the contract's custom error by name, transport trouble as transient. */
export function classifyRegistry(e: unknown, doing: string): RegistryError {
  if (e instanceof RegistryError) return e;
  if (e instanceof BaseError) {
    const reverted = e.walk((c) => c instanceof ContractFunctionRevertedError) as ContractFunctionRevertedError | null;
    if (reverted) {
      const name = reverted.data?.errorName ?? "reverted";
      const detail = reverted.data?.args?.length ? `(${reverted.data.args.map(String).join(", ")})` : "";
      return new RegistryError(`registry_${snake(name)}`, `${doing}: the registry refused it: ${name}${detail}`);
    }
    return new RegistryError("rpc_unavailable", `${doing}: ${e.shortMessage}`, true);
  }
  return new RegistryError("rpc_unavailable", `${doing}: ${(e as Error)?.message ?? String(e)}`, true);
}

const snake = (name: string) => name.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase();
