/** The `exact` scheme on EVM networks: verify and settle, one handler per token transfer method. */
import {
  DEFAULT_LEASE_MS,
  PAYMENT_IDENTIFIER,
  Reason,
  reject,
  type NetworkInfo,
  type PaymentMechanism,
  type PaymentRequest,
  type SettleOutcome,
  type SettlementLedger,
  type TransferMethod,
  type VerifyOutcome,
} from "@facilitator/core";
import { createPublicClient, getAddress, type Address, type Hex, type PublicClient } from "viem";
import { createEip3009Handler } from "./eip3009-handler.ts";
import { isDeployed, unwrapErc6492 } from "./erc6492.ts";
import { createPermitHandler } from "./permit-handler.ts";
import { isPermit2Payload, EIP2612_GAS_SPONSORING } from "./permit2.ts";
import { createPermit2Handler, type ApprovalFundingOptions } from "./permit2-handler.ts";
import { ERC20_APPROVAL_GAS_SPONSORING } from "./permit2-approval.ts";
import { FeeOracle } from "./fees.ts";
import { nodeMessage } from "./rpc-errors.ts";
import { batchingHttp } from "./rpc-transport.ts";
import { collectPayment, settlePayment, type NetworkRuntime, type SettleConfig } from "./settle.ts";
import { verdictFromLedger } from "./settle-record.ts";
import { contractPayerCoolingOff } from "./settle-limits.ts";
import { SignerPool } from "./signer-pool.ts";
import { provePayerSignature } from "./wallet-deployment.ts";
import type { TransferMethodHandler } from "./transfer-method.ts";

export interface EvmExactMechanismOptions {
  networks: readonly NetworkInfo[];
  /** Facilitator keys: one list for every network, or lists per network (v1 name or CAIP-2 id). */
  signers: readonly Hex[] | Readonly<Record<string, readonly Hex[]>>;
  ledger: SettlementLedger;
  /** Bound of one receipt wait; must stay well below the official clients' 90 s. Default 30 s. */
  receiptTimeoutMs?: number;
  /** Receipt polling interval. Default 250 ms (use ~50 ms on local chains). */
  pollingIntervalMs?: number;
  /** How often a stalled receipt wait checks the signer's queue for dropped transactions. */
  stallCheckMs?: number;
  /**
   * Lease of a claim or broadcast in the ledger, renewed every leaseMs/3 while its settle works; a
   * crashed settle's payment is taken over (reconciled, never re-signed) once it runs out. Default 5 s.
   */
  leaseMs?: number;
  /** Gas limit as a percentage of the estimate. Default 125. */
  gasMarginPercent?: number;
  /** Most gas one settlement transaction may need; a simulation above it is refused before anything is signed. Default 300,000. */
  maxGas?: bigint;
  /** Most wei per gas a settlement transaction may pay; while the chain asks more, settles are refused. Default 100 gwei. */
  maxFeePerGas?: bigint;
  /**
   * A payer whose signature only ERC-1271 proves is refused this long (ms) after one of its settlements
   * reverted on chain. Default 1 hour; 0 never refuses.
   */
  contractPayerCooloffMs?: number;
  /** validBefore must be at least this far ahead. Default 6 s. */
  validBeforeMarginSeconds?: number;
  /** Per JSON-RPC HTTP request. Default 10 s. */
  rpcTimeoutMs?: number;
  /**
   * The signer each ERC-2612 network advertises as permit spender (v1 name or CAIP-2 id -> address of
   * one of its keys). Default: its first key. Permits naming any of its keys are accepted either way.
   */
  permitSpenders?: Readonly<Record<string, string>>;
  /** Extra or replacement handlers. EIP-3009 and ERC-2612 permit are built in. */
  transferMethods?: Partial<Record<TransferMethod, TransferMethodHandler>>;
  /**
   * Factories through which an EIP-6492 signature may deploy its wallet before its payment settles
   * (the deployment runs on our gas, capped like a settlement). Default: none, so such signatures are
   * refused (`eip6492_factory_not_allowed`) before anything is simulated.
   */
  eip6492Factories?: readonly string[];
  /** Most gas the deployment of an EIP-6492 wallet may need. Default 500,000. */
  maxDeployGas?: bigint;
  /**
   * Most wei given to one payer so that its own approve(Permit2) transaction can pay its gas (the
   * `erc20ApprovalGasSponsoring` extension). Default 10^15 (0.001 ETH); 0 turns the extension off.
   */
  approvalFundingMaxWei?: bigint;
  /** A payer is given gas money for an approval at most once in this long (ms). Default 24 h. */
  approvalFundingCooloffMs?: number;
  /** Clock in ms (tests). */
  now?: () => number;
  /** Told what each successful settlement transaction cost, in wei (for the gas-spent metric). */
  onGasSpent?: (network: NetworkInfo, wei: bigint) => void;
}

export interface EvmExactMechanism extends PaymentMechanism {
  /** The runtime of one network (clients, signer pool): for tests and operational checks. */
  runtime(network: NetworkInfo | string): NetworkRuntime | undefined;
  /** The `upto` scheme (Permit2) on the same networks, signers and nonces. */
  readonly upto: PaymentMechanism;
}

/** The payment extensions the EVM mechanisms always implement, for `/supported`'s `extensions`. */
export const EVM_EXTENSIONS: readonly string[] = [EIP2612_GAS_SPONSORING, PAYMENT_IDENTIFIER];
export const DEFAULT_APPROVAL_FUNDING_MAX_WEI = 10n ** 15n;

/**
 * Caps on what one settlement transaction may cost us. An EIP-3009 transfer or a permit and its
 * transferFrom need 50,000 to 100,000 gas each (a smart wallet's signature check adds some): 300,000
 * leaves room for that and for a token upgrade, and keeps a stranger's contract from burning millions.
 */
export const DEFAULT_MAX_GAS = 300_000n;
export const DEFAULT_MAX_FEE_PER_GAS = 100_000_000_000n;
/** A smart wallet's deployment (a proxy and its set-up) needs 150,000 to 400,000 gas. */
export const DEFAULT_MAX_DEPLOY_GAS = 500_000n;

/** Official x402 clients give up after 90 s; a settle must answer (pending if need be) well before. */
const MAX_RECEIPT_TIMEOUT_MS = 80_000;

export function createEvmExactMechanism(opts: EvmExactMechanismOptions): EvmExactMechanism {
  const receiptTimeoutMs = opts.receiptTimeoutMs ?? 30_000;
  if (receiptTimeoutMs > MAX_RECEIPT_TIMEOUT_MS) {
    throw new Error(`receiptTimeoutMs ${receiptTimeoutMs} is too long: official x402 clients time out at 90 s; keep it at most ${MAX_RECEIPT_TIMEOUT_MS}`);
  }
  const cfg: SettleConfig = {
    ledger: opts.ledger,
    receiptTimeoutMs,
    pollingIntervalMs: opts.pollingIntervalMs ?? 250,
    stallCheckMs: opts.stallCheckMs ?? Math.min(5_000, Math.max(500, Math.floor(receiptTimeoutMs / 3))),
    leaseMs: opts.leaseMs ?? DEFAULT_LEASE_MS,
    gasMarginPercent: BigInt(opts.gasMarginPercent ?? 125),
    maxGas: opts.maxGas ?? DEFAULT_MAX_GAS,
    maxFeePerGas: opts.maxFeePerGas ?? DEFAULT_MAX_FEE_PER_GAS,
    contractPayerCooloffMs: opts.contractPayerCooloffMs ?? 3_600_000,
    eip6492Factories: (opts.eip6492Factories ?? []).map((f) => getAddress(f)),
    maxDeployGas: opts.maxDeployGas ?? DEFAULT_MAX_DEPLOY_GAS,
    now: opts.now ?? Date.now,
    onGasSpent: opts.onGasSpent,
  };
  const runtimes = new Map<string, NetworkRuntime>();
  const handlers: Partial<Record<TransferMethod, TransferMethodHandler>> = {
    eip3009: createEip3009Handler({ validBeforeMarginSeconds: opts.validBeforeMarginSeconds }) as TransferMethodHandler,
    permit: createPermitHandler({
      spenders: (network) => permitSpenders(runtimes.get(network.caip2), opts.permitSpenders),
      deadlineMarginSeconds: opts.validBeforeMarginSeconds,
    }) as TransferMethodHandler,
    ...opts.transferMethods,
  };
  const facilitators = (network: NetworkInfo) => runtimes.get(network.caip2)?.pool.addresses ?? [];
  const maxFundingWei = opts.approvalFundingMaxWei ?? DEFAULT_APPROVAL_FUNDING_MAX_WEI;
  const approvalFunding = maxFundingWei > 0n ? fundingMemory(cfg, maxFundingWei, opts.approvalFundingCooloffMs ?? 86_400_000) : undefined;
  const extensions = approvalFunding ? [...EVM_EXTENSIONS, ERC20_APPROVAL_GAS_SPONSORING] : EVM_EXTENSIONS;
  const permit2Options = { facilitators, approvalFunding, deadlineMarginSeconds: opts.validBeforeMarginSeconds };
  const permit2 = {
    exact: createPermit2Handler({ kind: "exact", ...permit2Options }) as TransferMethodHandler,
    upto: createPermit2Handler({ kind: "upto", ...permit2Options }) as TransferMethodHandler,
  };

  for (const network of opts.networks) {
    if (network.family !== "evm" || network.chainId === undefined) throw new Error(`network ${network.name} is not an EVM network`);
    const handler = handlers[network.asset.transferMethod];
    if (!handler) {
      throw new Error(`network ${network.name}: no handler for transfer method "${network.asset.transferMethod}" (pass it in transferMethods)`);
    }
    const client = createPublicClient({
      // No transport retries: a silent node would multiply every bound by the retry count; sends retry on their own.
      transport: batchingHttp(network.rpcUrl, { timeoutMs: opts.rpcTimeoutMs ?? 10_000, retryCount: 0 }),
      pollingInterval: cfg.pollingIntervalMs,
    }) as PublicClient;
    const chain = { network, chainId: network.chainId, client };
    const fees = new FeeOracle(client);
    const pool = new SignerPool(keysFor(opts.signers, network), { client, chainId: network.chainId, fees });
    runtimes.set(network.caip2, { network, chain, handler, pool, fees });
    if (network.asset.transferMethod === "permit") permitSpenders(runtimes.get(network.caip2), opts.permitSpenders); // fail at start, not per request
  }
  const runtimeOf = (n: NetworkInfo | string) => runtimes.get(typeof n === "string" ? n : n.caip2) ?? [...runtimes.values()].find((r) => r.network.name === n);

  /**
   * The handler of one request: `upto` is Permit2's; an `exact` payload signed for Permit2 goes through
   * the exact proxy whatever the network's own method (any ERC-20 pays that way); otherwise the network's.
   */
  const forRequest = (rt: NetworkRuntime, request: PaymentRequest): NetworkRuntime => {
    const handler = request.scheme === "upto" ? permit2.upto : isPermit2Payload(request.payload) ? permit2.exact : rt.handler;
    return handler === rt.handler ? rt : { ...rt, handler };
  };
  const scheme = (name: "exact" | "upto"): PaymentMechanism => ({
    scheme: name,
    family: "evm",
    networks: [...runtimes.values()].map((r) => r.network),
    extensions,

    supportedExtra(network) {
      const rt = runtimeOf(network);
      return rt && (name === "upto" ? permit2.upto : rt.handler).supportedExtra(rt.network);
    },

    signers() {
      return [...new Set([...runtimes.values()].flatMap((r) => r.pool.addresses))];
    },

    async verify(asked: PaymentRequest): Promise<VerifyOutcome> {
      const base = runtimeOf(asked.network);
      if (!base || asked.scheme !== name) return { isValid: false, ...refusal(asked, name) };
      const { request, deployment } = unwrapErc6492(asked);
      const rt = forRequest(base, request);
      const parsed = rt.handler.parse(request);
      if (!parsed.ok) return { isValid: false, ...parsed.rejection, ...(parsed.payer ? { payer: parsed.payer } : {}) };
      const p = parsed.value;
      const outOfRange = rt.handler.checkVerify?.(p);
      if (outOfRange) return { isValid: false, payer: p.payer, ...outOfRange };
      try {
        const unsigned = await provePayerSignature(rt, cfg, p, deployment);
        if (unsigned) return { isValid: false, payer: p.payer, ...unsigned };
        // Then the record: a payment answered pending is the clients' retry path, valid whatever the chain shows now.
        const entry = await cfg.ledger.get(p.ledgerKey);
        const verdict = verdictFromLedger(rt, cfg, request, p, entry);
        if (verdict.kind === "settle will answer") return { isValid: true, payer: p.payer };
        const late = rt.handler.checkTime(p, BigInt(Math.floor(cfg.now() / 1000)));
        if (late) return { isValid: false, payer: p.payer, ...late };
        const cooling = await contractPayerCoolingOff(rt, cfg, p);
        if (cooling) return { isValid: false, payer: p.payer, ...cooling };
        // A wallet not deployed yet fails every simulation of its payment: its signature was proven by
        // simulating its deployment; settle deploys it, then runs the chain's checks.
        if (!deployment || (await isDeployed(rt.chain.client, p.payer))) {
          const settler = rt.handler.settler?.(p) ?? rt.pool.addresses[0]!;
          // A handler that retries failed payments (a permit already sent) checks the chain against what was recorded.
          const checked = await rt.handler.checkOnChain(rt.chain, p, settler, { estimateGas: false, recorded: entry });
          if (!checked.ok) return { isValid: false, payer: p.payer, ...checked.rejection };
        }
        return verdict.kind === "refused" ? { isValid: false, payer: p.payer, ...verdict.rejection } : { isValid: true, payer: p.payer };
      } catch (e) {
        return { isValid: false, payer: p.payer, ...reject(Reason.unexpectedVerify, `chain reads failed: ${nodeMessage(e)}`) };
      }
    },

    async settle(request: PaymentRequest): Promise<SettleOutcome> {
      const rt = runtimeOf(request.network);
      if (!rt || request.scheme !== name) return { success: false, transaction: "", ...refusal(request, name) };
      const { request: unwrapped, deployment } = unwrapErc6492(request);
      return settlePayment(forRequest(rt, unwrapped), cfg, unwrapped, deployment);
    },

    async collect(request: PaymentRequest, version: number): Promise<SettleOutcome | undefined> {
      const rt = runtimeOf(request.network);
      const unwrapped = unwrapErc6492(request).request;
      return rt && request.scheme === name ? collectPayment(forRequest(rt, unwrapped), cfg, unwrapped, version) : undefined;
    },
  });

  return { ...scheme("exact"), runtime: runtimeOf, upto: scheme("upto") };
}

/** Who was given gas money for an approval lately, in the settlement ledger (shared by every process). */
function fundingMemory(cfg: SettleConfig, maxWei: bigint, cooloffMs: number): ApprovalFundingOptions {
  const key = (chainId: number, payer: string) => `evm:${chainId}:approval-funded:${payer.toLowerCase()}`;
  return {
    maxWei,
    async fundedRecently(chainId, payer) {
      const entry = await cfg.ledger.get(key(chainId, payer));
      return (entry?.keepUntil ?? 0) > cfg.now();
    },
    async markFunded(chainId, payer) {
      const entry = await cfg.ledger.get(key(chainId, payer));
      const now = cfg.now();
      await cfg.ledger.compareAndSet({ key: key(chainId, payer), state: "success", network: `eip155:${chainId}`, payer, keepUntil: now + cooloffMs, updatedAt: now }, entry?.version ?? 0);
    },
  };
}

/** Why a request that the registry should never have routed here is refused. */
function refusal(request: PaymentRequest, scheme: string) {
  return request.scheme !== scheme
    ? reject(Reason.unsupportedScheme, `scheme ${request.scheme} is not handled here; only ${scheme}`)
    : reject(Reason.invalidNetwork, `network ${request.networkId} is not served by this EVM mechanism`);
}

function keysFor(signers: EvmExactMechanismOptions["signers"], network: NetworkInfo): readonly Hex[] {
  if (Array.isArray(signers)) return signers;
  const byNetwork = signers as Readonly<Record<string, readonly Hex[]>>;
  const keys = byNetwork[network.name] ?? byNetwork[network.caip2];
  if (!keys?.length) throw new Error(`no signer keys configured for network ${network.name}`);
  return keys;
}

/** A permit network's signers, the advertised spender first. */
function permitSpenders(rt: NetworkRuntime | undefined, configured: EvmExactMechanismOptions["permitSpenders"]): Address[] {
  if (!rt) return [];
  const addresses = rt.pool.addresses;
  const wanted = configured?.[rt.network.name] ?? configured?.[rt.network.caip2];
  if (!wanted) return addresses;
  const spender = getAddress(wanted);
  if (!addresses.includes(spender)) throw new Error(`permit spender ${spender} of ${rt.network.name} is not one of its signer keys`);
  return [spender, ...addresses.filter((a) => a !== spender)];
}
