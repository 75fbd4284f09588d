/**
 * Permit2 transfer methods: `exact` through x402ExactPermit2Proxy and `upto` through
 * x402UptoPermit2Proxy, one proxy call each (`settleWithPermit` when the client added an EIP-2612
 * permit for Permit2). Permit2 consumes the nonce in the same call that moves the funds, so a reverted
 * call moved nothing and a later attempt is safe: the chain's checks decide it.
 */
import { Reason, reject, type NetworkInfo, type PaymentRequest, type RuleResult } from "@facilitator/core";
import { encodeFunctionData, getAddress, parseAbi, parseEventLogs, recoverTransactionAddress, type Address, type Hex, type PublicClient, type TransactionReceipt } from "viem";
import { approvalFunding } from "./permit2-approval.ts";
import { hasCode, word } from "./batched-reads.ts";
import {
  checkPermit2Payment,
  checkPermit2Time,
  permit2LedgerKey,
  permit2NonceBit,
  planPermit2Settlement,
  PERMIT2_ADDRESS,
  PERMIT2_TRANSFER_METHOD,
  type Permit2ChainState,
  type Permit2Kind,
  type Permit2Payment,
} from "./permit2.ts";
import { isTransientRpcError, revertReason } from "./rpc-errors.ts";
import type { EvmChainContext, EvmPayment, SettleCall, TransferMethodHandler } from "./transfer-method.ts";

const proxyStructs = [
  "struct TokenPermissions { address token; uint256 amount; }",
  "struct PermitTransferFrom { TokenPermissions permitted; uint256 nonce; uint256 deadline; }",
  "struct EIP2612Permit { uint256 value; uint256 deadline; bytes32 r; bytes32 s; uint8 v; }",
] as const;
const proxyAbi = {
  exact: parseAbi([
    ...proxyStructs,
    "struct Witness { address to; uint256 validAfter; }",
    "function settle(PermitTransferFrom permit, address owner, Witness witness, bytes signature)",
    "function settleWithPermit(EIP2612Permit permit2612, PermitTransferFrom permit, address owner, Witness witness, bytes signature)",
  ]),
  upto: parseAbi([
    ...proxyStructs,
    "struct Witness { address to; address facilitator; uint256 validAfter; }",
    "function settle(PermitTransferFrom permit, uint256 amount, address owner, Witness witness, bytes signature)",
    "function settleWithPermit(EIP2612Permit permit2612, PermitTransferFrom permit, uint256 amount, address owner, Witness witness, bytes signature)",
  ]),
};
const tokenAbi = parseAbi([
  "function balanceOf(address owner) view returns (uint256)",
  "function allowance(address owner, address spender) view returns (uint256)",
]);
const permit2Abi = parseAbi(["function nonceBitmap(address owner, uint256 word) view returns (uint256)"]);
const transferEvent = parseAbi(["event Transfer(address indexed from, address indexed to, uint256 value)"]);

export type Permit2EvmPayment = Permit2Payment & EvmPayment;

/** The proxy call that settles `p`: the payer's signature and the amounts go to Permit2 unchanged. */
export function permit2SettleCall(p: Permit2Payment): SettleCall {
  const permitArg = { permitted: { token: p.asset, amount: p.permitted }, nonce: p.nonce, deadline: p.deadline };
  const sponsored = p.sponsoredPermit && { value: p.sponsoredPermit.value, deadline: p.sponsoredPermit.deadline, ...p.sponsoredPermit.signature };
  const data =
    p.kind === "exact"
      ? encodeFunctionData({
          abi: proxyAbi.exact,
          ...(sponsored
            ? { functionName: "settleWithPermit", args: [sponsored, permitArg, p.owner, { to: p.payTo, validAfter: p.validAfter }, p.signature] }
            : { functionName: "settle", args: [permitArg, p.owner, { to: p.payTo, validAfter: p.validAfter }, p.signature] }),
        } as never)
      : encodeFunctionData({
          abi: proxyAbi.upto,
          ...(sponsored
            ? { functionName: "settleWithPermit", args: [sponsored, permitArg, p.charge, p.owner, uptoWitnessOf(p), p.signature] }
            : { functionName: "settle", args: [permitArg, p.charge, p.owner, uptoWitnessOf(p), p.signature] }),
        } as never);
  return { to: p.proxy, data };
}

function uptoWitnessOf(p: Permit2Payment) {
  return { to: p.payTo, facilitator: p.facilitator!, validAfter: p.validAfter };
}

/**
 * Every read in one JSON-RPC batch (see rpc-transport.ts): code of the asset, the payer and the proxy,
 * the payer's balance and allowance to Permit2, Permit2's nonce word, and the proxy call itself as
 * `settler` sends it (a call, or a gas estimate). Throws only when the node could not be reached.
 */
export async function readPermit2State(client: PublicClient, p: Permit2Payment, settler: Address, simulate: "call" | "estimate"): Promise<Permit2ChainState> {
  const call = (to: Address, data: Hex) => client.request({ method: "eth_call", params: [{ to, data }, "latest"] });
  const code = (a: Address) => client.request({ method: "eth_getCode", params: [a, "latest"] });
  const { to, data } = permit2SettleCall(p);
  const tx = { from: settler, to, data };
  const results = await Promise.allSettled([
    code(p.asset),
    code(p.owner),
    code(p.proxy),
    call(p.asset, encodeFunctionData({ abi: tokenAbi, functionName: "balanceOf", args: [p.owner] })),
    call(p.asset, encodeFunctionData({ abi: tokenAbi, functionName: "allowance", args: [p.owner, PERMIT2_ADDRESS] })),
    call(PERMIT2_ADDRESS, encodeFunctionData({ abi: permit2Abi, functionName: "nonceBitmap", args: [p.owner, permit2NonceBit(p.nonce).word] })),
    simulate === "estimate" ? client.request({ method: "eth_estimateGas", params: [tx] }) : client.request({ method: "eth_call", params: [tx, "latest"] }),
  ]);
  for (const result of results) {
    if (result.status === "rejected" && isTransientRpcError(result.reason)) throw result.reason;
  }
  const [assetCode, ownerCode, proxyCode, balance, allowance, nonceWord, settle] = results;
  return {
    assetHasCode: hasCode(assetCode!),
    ownerHasCode: hasCode(ownerCode!),
    proxyHasCode: hasCode(proxyCode!),
    balance: word(balance!),
    allowance: word(allowance!),
    nonceWord: word(nonceWord!),
    settle:
      settle!.status === "fulfilled"
        ? { ok: true, gas: simulate === "estimate" ? BigInt(settle!.value as Hex) : 0n }
        : { ok: false, reason: revertReason(settle!.reason) },
  };
}

/** What funding payers' approvals (`erc20ApprovalGasSponsoring`) may cost, and the memory of who was funded. */
export interface ApprovalFundingOptions {
  maxWei: bigint;
  fundedRecently(chainId: number, payer: Address): Promise<boolean>;
  /** Called just before a payer's gas money is signed. */
  markFunded(chainId: number, payer: Address): Promise<void>;
}

export interface Permit2HandlerOptions {
  kind: Permit2Kind;
  /** Off (undefined): a payment relying on an approval transaction is refused like one without allowance. */
  approvalFunding?: ApprovalFundingOptions;
  /** The accounts that settle on a network; `upto` advertises the first as `extra.facilitatorAddress`. */
  facilitators(network: NetworkInfo): readonly Address[];
  /** Deadlines must be at least this far ahead. Default 6 s. */
  deadlineMarginSeconds?: number;
}

export function createPermit2Handler(opts: Permit2HandlerOptions): TransferMethodHandler<Permit2EvmPayment> {
  const margin = BigInt(opts.deadlineMarginSeconds ?? 6);
  const { kind } = opts;
  return {
    method: "permit2",
    retriesFailedTransfer: true,
    signatureReason: Reason.permit2InvalidSignature,

    // `upto`: the proxy lets only the facilitator the payer named send the call.
    settler: (p) => p.facilitator,

    supportedExtra(network: NetworkInfo) {
      if (kind === "exact") return { assetTransferMethod: PERMIT2_TRANSFER_METHOD };
      const facilitator = opts.facilitators(network)[0];
      return facilitator ? { facilitatorAddress: facilitator } : undefined;
    },

    parse(request: PaymentRequest): RuleResult<Permit2EvmPayment> {
      const checked = checkPermit2Payment(request, kind, opts.facilitators(request.network));
      if (!checked.ok) return checked;
      const p = checked.value;
      return { ok: true, value: { ...p, payer: p.owner, amount: p.charge, ledgerKey: permit2LedgerKey(request.network.chainId!, p.owner, p.nonce) } };
    },

    // Verify asks whether the payer's maximum is good: the requirements name the signed amount exactly.
    checkVerify(p) {
      return p.charge === p.permitted ? undefined : reject(Reason.permit2AmountMismatch, `the permit allows ${p.permitted}, the requirements ask ${p.charge}`);
    },

    nothingToSend: (p) => p.charge === 0n,

    checkTime(p, nowSeconds) {
      return checkPermit2Time(p, nowSeconds, margin);
    },

    async checkOnChain(chain: EvmChainContext, p, settler, { estimateGas }) {
      const payment = opts.approvalFunding ? p : { ...p, sponsoredApproval: undefined };
      const state = await readPermit2State(chain.client, payment, settler, estimateGas ? "estimate" : "call");
      const plan = planPermit2Settlement(payment, state);
      if (!plan.ok) return plan;
      const { approval } = plan.value;
      if (!approval) return { ok: true, value: estimateGas ? { gas: plan.value.gas } : {} };
      // The payer's approval goes out first; we give it the gas money it can spend, if it lacks it.
      const funding = opts.approvalFunding!;
      const signer = await recoverTransactionAddress({ serializedTransaction: approval.raw as never }).catch(() => undefined);
      if (signer !== p.owner) return { ok: false, rejection: reject(Reason.erc20ApprovalTxSignerMismatch, `the approval transaction is signed by ${signer ?? "nobody"}, not the payer ${p.owner}`), payer: p.owner };
      const [nonce, balance, fundedRecently] = await Promise.all([
        chain.client.getTransactionCount({ address: p.owner, blockTag: "latest" }),
        chain.client.getBalance({ address: p.owner }),
        funding.fundedRecently(chain.chainId, p.owner),
      ]);
      const wei = approvalFunding(approval, { nonce, balance, fundedRecently }, funding.maxWei);
      if (!wei.ok) return { ...wei, payer: p.owner };
      if (!estimateGas) return { ok: true, value: {} };
      if (wei.value > 0n) await funding.markFunded(chain.chainId, p.owner);
      const prior = wei.value > 0n ? [{ to: p.owner, data: "0x" as Hex, value: wei.value, gas: 21_000n }] : [];
      return { ok: true, value: { gas: plan.value.gas, prior, foreign: approval.raw } };
    },

    settleCall: permit2SettleCall,

    checkReceipt(receipt: TransactionReceipt, p) {
      const transfers = parseEventLogs({ abi: transferEvent, logs: receipt.logs, eventName: "Transfer", strict: true });
      const paid = transfers.some(
        (log) => getAddress(log.address) === p.asset && getAddress(log.args.from) === p.owner && getAddress(log.args.to) === p.payTo && log.args.value === p.charge,
      );
      return paid
        ? undefined
        : reject(Reason.transferEventMismatch, `transaction ${receipt.transactionHash} has no Transfer(${p.owner}, ${p.payTo}, ${p.charge}) log from ${p.asset}`);
    },
  };
}
