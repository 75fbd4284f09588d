/**
 * The ERC-2612 transfer method: the payer's `permit` names one of our signers as spender; that signer
 * sends `permit()` and then `transferFrom(owner, payTo, value)` at consecutive nonces (the permit is
 * skipped when the allowance is already in place). See PERMIT.md.
 */
import { Reason, reject, type NetworkInfo, type PaymentRequest, type RuleResult } from "@facilitator/core";
import { encodeFunctionData, getAddress, parseAbi, parseEventLogs, type Address, type TransactionReceipt } from "viem";
import {
  PERMIT_TRANSFER_METHOD,
  checkPermitDeadline,
  checkPermitPayment,
  permitLedgerKey,
  planPermitSettlement,
  type PermitPayment,
} from "./permit.ts";
import { permitTokenAbi, readPermitState } from "./permit-reads.ts";
import { splitSignature } from "./signature.ts";
import type { EvmChainContext, EvmPayment, SettleCall, TransferMethodHandler } from "./transfer-method.ts";

const permitVrs = parseAbi(["function permit(address owner, address spender, uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s)"]);
/** The `bytes signature` overload some tokens (USDC v2.2) offer for ERC-1271 contract wallets. */
const permitBytes = parseAbi(["function permit(address owner, address spender, uint256 value, uint256 deadline, bytes signature)"]);
const transferEvent = parseAbi(["event Transfer(address indexed from, address indexed to, uint256 value)"]);

export type PermitEvmPayment = PermitPayment & EvmPayment;

/** `permit` calldata: the (v, r, s) overload for 65-byte signatures, `bytes` otherwise. */
export function permitCall(p: PermitPayment): SettleCall {
  const { owner, spender, value, deadline } = p.permit;
  const split = splitSignature(p.signature);
  const data = split
    ? encodeFunctionData({ abi: permitVrs, functionName: "permit", args: [owner, spender, value, deadline, split.v, split.r, split.s] })
    : encodeFunctionData({ abi: permitBytes, functionName: "permit", args: [owner, spender, value, deadline, p.signature] });
  return { to: p.asset, data };
}

/** The call that moves the funds, sent by the spender. */
export function transferFromCall(p: PermitPayment): SettleCall {
  const { owner, value } = p.permit;
  return { to: p.asset, data: encodeFunctionData({ abi: permitTokenAbi, functionName: "transferFrom", args: [owner, p.payTo, value] }) };
}

export interface PermitHandlerOptions {
  /**
   * Our signers on a network: a permit naming any of them is accepted and settled by that one.
   * The first is the spender advertised in `/supported` (`extra.spender`).
   */
  spenders(network: NetworkInfo): readonly Address[];
  /** The permit deadline must be at least this far ahead. Default 6 s. */
  deadlineMarginSeconds?: number;
}

export function createPermitHandler(opts: PermitHandlerOptions): TransferMethodHandler<PermitEvmPayment> {
  const margin = BigInt(opts.deadlineMarginSeconds ?? 6);
  return {
    method: "permit",
    retriesFailedTransfer: true,

    settler: (p) => p.permit.spender,

    supportedExtra(network: NetworkInfo) {
      const { name, version } = network.asset;
      const spender = opts.spenders(network)[0];
      return { ...(name && version ? { name, version } : {}), assetTransferMethod: PERMIT_TRANSFER_METHOD, ...(spender ? { spender } : {}) };
    },

    parse(request: PaymentRequest): RuleResult<PermitEvmPayment> {
      const checked = checkPermitPayment(request.payload, request.requirements, request.network, opts.spenders(request.network));
      if (!checked.ok) return checked;
      const p = checked.value;
      const { owner, nonce, value } = p.permit;
      return { ok: true, value: { ...p, payer: owner, amount: value, ledgerKey: permitLedgerKey(p.domain.chainId, p.asset, owner, nonce) } };
    },

    checkTime(payment, nowSeconds) {
      return checkPermitDeadline(payment.permit, nowSeconds, margin);
    },

    async checkOnChain(chain: EvmChainContext, p, settler, { estimateGas, recorded }) {
      const state = await readPermitState(chain.client, {
        asset: p.asset,
        owner: p.permit.owner,
        spender: settler,
        payTo: p.payTo,
        value: p.permit.value,
        permitData: permitCall(p).data,
        simulate: estimateGas ? "estimate" : "call",
      });
      const plan = planPermitSettlement(p, state, chain.chainId, { permitRecorded: !!recorded?.priorTransactions?.length });
      if (!plan.ok) return plan;
      const { permitNeeded, permitGas, transferGas } = plan.value;
      if (!estimateGas) return { ok: true, value: {} };
      return { ok: true, value: { gas: transferGas, prior: permitNeeded ? [{ ...permitCall(p), gas: permitGas }] : [] } };
    },

    settleCall: transferFromCall,

    checkReceipt(receipt: TransactionReceipt, p) {
      const { owner, value } = p.permit;
      const transfers = parseEventLogs({ abi: transferEvent, logs: receipt.logs, eventName: "Transfer", strict: true });
      const paid = transfers.some(
        (log) => getAddress(log.address) === p.asset && getAddress(log.args.from) === owner && getAddress(log.args.to) === p.payTo && log.args.value === value,
      );
      return paid
        ? undefined
        : reject(Reason.transferEventMismatch, `transaction ${receipt.transactionHash} has no Transfer(${owner}, ${p.payTo}, ${value}) log from ${p.asset}`);
    },
  };
}
