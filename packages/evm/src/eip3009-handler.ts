/** The EIP-3009 transfer method: `transferWithAuthorization` signed by the payer, sent by the facilitator. */
import { Reason, reject, type NetworkInfo, type PaymentRequest, type Rejection, type RuleResult } from "@facilitator/core";
import { encodeFunctionData, getAddress, parseAbi, parseEventLogs, type TransactionReceipt } from "viem";
import { checkEip3009Payment, checkEip3009Window, type Eip3009Payment } from "./eip3009.ts";
import { readEip3009State } from "./eip3009-reads.ts";
import { splitSignature } from "./signature.ts";
import type { EvmChainContext, EvmPayment, SettleCall, TransferMethodHandler } from "./transfer-method.ts";

const transferWithAuthorizationVrs = parseAbi([
  "function transferWithAuthorization(address from, address to, uint256 value, uint256 validAfter, uint256 validBefore, bytes32 nonce, uint8 v, bytes32 r, bytes32 s)",
]);
const transferWithAuthorizationBytes = parseAbi([
  "function transferWithAuthorization(address from, address to, uint256 value, uint256 validAfter, uint256 validBefore, bytes32 nonce, bytes signature)",
]);
const transferEvent = parseAbi(["event Transfer(address indexed from, address indexed to, uint256 value)"]);

export type Eip3009EvmPayment = Eip3009Payment & EvmPayment;

/** The settlement ledger key of an EIP-3009 payment: the token's own replay key (payer, nonce) per chain. */
export function eip3009LedgerKey(chainId: number, asset: string, from: string, nonce: string): string {
  return `evm:${chainId}:${asset.toLowerCase()}:${from.toLowerCase()}:${nonce.toLowerCase()}`;
}

/** `transferWithAuthorization` calldata: the (v, r, s) overload for 65-byte signatures, `bytes` otherwise. */
export function transferWithAuthorizationCall(p: Eip3009Payment): SettleCall {
  const a = p.authorization;
  const head = [a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce] as const;
  const split = splitSignature(p.signature);
  const data = split
    ? encodeFunctionData({ abi: transferWithAuthorizationVrs, functionName: "transferWithAuthorization", args: [...head, split.v, split.r, split.s] })
    : encodeFunctionData({ abi: transferWithAuthorizationBytes, functionName: "transferWithAuthorization", args: [...head, p.signature] });
  return { to: p.asset, data };
}

export function createEip3009Handler(opts: { validBeforeMarginSeconds?: number } = {}): TransferMethodHandler<Eip3009EvmPayment> {
  const margin = BigInt(opts.validBeforeMarginSeconds ?? 6);
  return {
    method: "eip3009",

    supportedExtra(network: NetworkInfo) {
      const { name, version } = network.asset;
      return name && version ? { name, version } : undefined;
    },

    parse(request: PaymentRequest): RuleResult<Eip3009EvmPayment> {
      const checked = checkEip3009Payment(request.payload, request.requirements, request.network);
      if (!checked.ok) return checked;
      const p = checked.value;
      const a = p.authorization;
      return {
        ok: true,
        value: { ...p, payer: a.from, amount: a.value, ledgerKey: eip3009LedgerKey(p.domain.chainId, p.asset, a.from, a.nonce) },
      };
    },

    checkTime(payment, nowSeconds) {
      return checkEip3009Window(payment.authorization, nowSeconds, margin);
    },

    async checkOnChain(chain: EvmChainContext, p, settler, opts) {
      const a = p.authorization;
      const state = await readEip3009State(chain.client, {
        asset: p.asset,
        payer: a.from,
        nonce: a.nonce,
        settler,
        data: transferWithAuthorizationCall(p).data,
        simulate: opts.estimateGas ? "estimate" : "call",
        ecdsaValid: p.ecdsaValid,
      });
      const fail = (rejection: Rejection) => ({ ok: false as const, rejection, payer: a.from });
      if (!state.assetHasCode) return fail(reject(Reason.assetNotDeployed, `asset ${p.asset} has no code on chain ${chain.chainId}`));
      if (!p.ecdsaValid && !state.payerHasCode) {
        return fail(reject(Reason.signature, `the signature is not ${a.from}'s, and ${a.from} is not a contract wallet`));
      }
      if (state.balance !== undefined && state.balance < a.value) {
        return fail(reject(Reason.insufficientFunds, `${a.from} holds ${state.balance} of ${p.asset}, the payment needs ${a.value}`));
      }
      if (state.nonceUsed) {
        return fail(reject(Reason.nonceAlreadyUsed, `authorization nonce ${a.nonce} of ${a.from} is already used or canceled`));
      }
      if (!state.simulation.ok) {
        return fail(reject(Reason.evmSimulationFailed, `simulation of transferWithAuthorization reverted: ${state.simulation.reason}`));
      }
      return { ok: true, value: opts.estimateGas ? { gas: state.simulation.gas } : {} };
    },

    settleCall: transferWithAuthorizationCall,

    checkReceipt(receipt: TransactionReceipt, p) {
      const a = p.authorization;
      const transfers = parseEventLogs({ abi: transferEvent, logs: receipt.logs, eventName: "Transfer", strict: true });
      const paid = transfers.some(
        (log) =>
          getAddress(log.address) === p.asset &&
          getAddress(log.args.from) === a.from &&
          getAddress(log.args.to) === p.payTo &&
          log.args.value === a.value,
      );
      return paid
        ? undefined
        : reject(Reason.transferEventMismatch, `transaction ${receipt.transactionHash} has no Transfer(${a.from}, ${p.payTo}, ${a.value}) log from ${p.asset}`);
    },
  };
}
