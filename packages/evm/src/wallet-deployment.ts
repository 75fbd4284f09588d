/**
 * Proving a payer's signature (ECDSA, ERC-1271, or EIP-6492 for a wallet not deployed yet) and
 * deploying an EIP-6492 wallet before its payment settles. The deployment goes through the settlement
 * engine under its own ledger key (`evm:<chain>:deploy:<wallet>`), so it is recorded before it is
 * sent, never broadcast twice across requests or processes, reconciled after a crash, and capped like
 * any settlement transaction.
 */
import { Reason, reject, settleOnLedger, type PaymentRequest, type Rejection } from "@facilitator/core";
import { encodeFunctionData, parseAbi, type Address, type Hex } from "viem";
import { word } from "./batched-reads.ts";
import { checkPayerSignature } from "./erc1271.ts";
import { checkFactory, isDeployed, proveCounterfactualSignature, type WalletDeployment } from "./erc6492.ts";
import { isTransientRpcError, nodeMessage, revertReason } from "./rpc-errors.ts";
import { EvmSettlement, engineConfig, ledgerPayment } from "./evm-settlement.ts";
import type { NetworkRuntime, SettleConfig } from "./settle.ts";
import type { EvmPayment, TransferMethodHandler } from "./transfer-method.ts";

/** Undefined when the payer's signature is proven (a counterfactual wallet's by simulating its deployment). */
export async function provePayerSignature(rt: NetworkRuntime, cfg: SettleConfig, p: EvmPayment, deployment: WalletDeployment | undefined): Promise<Rejection | undefined> {
  const reason = rt.handler.signatureReason;
  if (p.ecdsaValid || !deployment || (await isDeployed(rt.chain.client, p.payer))) return checkPayerSignature(rt.chain.client, p, reason);
  return checkFactory(deployment, cfg.eip6492Factories) ?? proveCounterfactualSignature(rt.chain.client, p, deployment, reason ?? Reason.signature);
}

const balanceOf = parseAbi(["function balanceOf(address owner) view returns (uint256)"]);

/**
 * Deploys the payer's wallet through the factory its signature names, unless it has code already.
 * Undefined once the wallet has code; otherwise why the payment cannot settle now.
 */
export async function deployPayerWallet(rt: NetworkRuntime, cfg: SettleConfig, request: PaymentRequest, p: EvmPayment, deployment: WalletDeployment): Promise<Rejection | undefined> {
  const { client } = rt.chain;
  if (await isDeployed(client, p.payer)) return undefined;
  const refused = checkFactory(deployment, cfg.eip6492Factories);
  if (refused) return refused;
  // Our gas makes the wallet: only for a payer that holds what it pays.
  const asset = (p as EvmPayment & { asset?: Address }).asset;
  if (asset) {
    const data = encodeFunctionData({ abi: balanceOf, functionName: "balanceOf", args: [p.payer] });
    const [held] = await Promise.allSettled([client.request({ method: "eth_call", params: [{ to: asset, data }, "latest"] })]);
    const balance = word(held!);
    if (balance !== undefined && balance < p.amount) {
      return reject(Reason.insufficientFunds, `${p.payer} holds ${balance} of ${asset}, the payment needs ${p.amount}; its wallet is not deployed`);
    }
  }
  const wallet: EvmPayment = { ...p, ecdsaValid: true, ledgerKey: `evm:${rt.network.chainId}:deploy:${p.payer.toLowerCase()}` };
  const deployer: NetworkRuntime = { ...rt, handler: deploymentHandler(deployment) };
  // Its own record, without the payment's extensions (a payment-identifier names the payment, not this).
  const own: PaymentRequest = { ...request, extensions: undefined };
  const deployCfg = { ...cfg, maxGas: cfg.maxDeployGas };
  const outcome = await settleOnLedger(engineConfig(cfg), { ...ledgerPayment(deployer, cfg, own, wallet), amount: 0n }, new EvmSettlement(deployer, deployCfg, wallet));
  if (await isDeployed(client, p.payer)) return undefined;
  if (outcome.success) return reject(Reason.smartWalletDeploymentFailed, `the factory call ${outcome.transaction} succeeded but ${p.payer} has no code`);
  return outcome.reason === Reason.duplicateSettlement || outcome.reason === Reason.settlementPending
    ? reject(Reason.settlementPending, `the deployment of wallet ${p.payer} is under way (${outcome.message}); settle again to continue`)
    : reject(Reason.smartWalletDeploymentFailed, `wallet ${p.payer} could not be deployed: ${outcome.message}`);
}

/** The factory call as a "transfer method" of the engine: one call, simulated for gas, capped. */
function deploymentHandler(deployment: WalletDeployment): TransferMethodHandler {
  const call = { to: deployment.factory, data: deployment.data };
  return {
    method: "eip3009", // unused: the engine never asks a deployment for its method
    supportedExtra: () => undefined,
    parse: () => ({ ok: false, rejection: reject(Reason.invalidPayload, "a wallet deployment is not parsed") }),
    checkTime: () => undefined,
    async checkOnChain(chain, _p, settler, { estimateGas }) {
      const tx = { from: settler, ...call };
      try {
        const gas = estimateGas ? BigInt((await chain.client.request({ method: "eth_estimateGas", params: [tx] })) as Hex) : 0n;
        if (!estimateGas) await chain.client.request({ method: "eth_call", params: [tx, "latest"] });
        return { ok: true, value: estimateGas ? { gas } : {} };
      } catch (e) {
        if (isTransientRpcError(e)) throw e;
        return { ok: false, rejection: reject(Reason.smartWalletDeploymentFailed, `simulation of the factory call reverted: ${revertReason(e) || nodeMessage(e)}`) };
      }
    },
    settleCall: () => call,
    checkReceipt: () => undefined,
  };
}
