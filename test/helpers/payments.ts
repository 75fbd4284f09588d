/** Payments as a client sends them to /verify and /settle, signed by the local world's payer. */
import { createPublicClient, createWalletClient, erc20Abi, http, maxUint256, type Address, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { x402Client } from "@x402/core/client";
import type { PaymentRequirements } from "@x402/core/types";
import { UptoEvmScheme } from "@x402/evm/upto/client";
import { localChain, PERMIT2_ADDRESS, type EvmWorldNetwork } from "@facilitator/devnet";
import { signEip3009Payload } from "@facilitator/evm";

export interface SettleBody {
  x402Version: 2;
  paymentPayload: { x402Version: 2; accepted: Record<string, unknown>; payload: unknown };
  paymentRequirements: Record<string, unknown>;
}

/** The network fields of a payment: the local devnet's entry (`EvmWorldNetwork`, or the same in devnet.json). */
type PaymentNetwork = Pick<EvmWorldNetwork, "caip2" | "chainId" | "asset" | "payTo" | "payer">;

/**
 * A fresh v2 `exact` EIP-3009 payment of `value` signed by the world's payer, to its payTo (or `payTo`),
 * as a /verify or /settle body. `amount` asks in the requirements for other than the signed value.
 * `accepted` is a copy of the requirements, so a test may change one and not the other.
 */
export async function evmPaymentBody(
  n: PaymentNetwork,
  value: bigint,
  over: { payTo?: Address; amount?: string } = {},
): Promise<{ body: SettleBody; nonce: Hex }> {
  const payTo = over.payTo ?? n.payTo;
  const requirements = {
    scheme: "exact",
    network: n.caip2,
    amount: over.amount ?? value.toString(),
    asset: n.asset.address,
    payTo,
    maxTimeoutSeconds: 60,
    extra: { name: n.asset.name, version: n.asset.version },
  };
  const payload = await signEip3009Payload(privateKeyToAccount(n.payer.privateKey), {
    domain: { name: n.asset.name, version: n.asset.version, chainId: n.chainId, verifyingContract: n.asset.address },
    to: payTo,
    value,
  });
  return {
    body: { x402Version: 2, paymentPayload: { x402Version: 2, accepted: { ...requirements }, payload }, paymentRequirements: requirements },
    nonce: payload.authorization.nonce as Hex,
  };
}

/** The payer approves Permit2 for good, as a wallet does once (gas money given for that approval and taken back after). */
export async function approvePermit2(n: Pick<EvmWorldNetwork, "rpcUrl" | "chainId" | "asset">, payer: { address: Address; key: Hex }): Promise<void> {
  const rpc = (method: string, params: unknown[]) =>
    fetch(n.rpcUrl, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) });
  await rpc("anvil_setBalance", [payer.address, "0xde0b6b3a7640000"]);
  const chain = localChain(n.chainId, n.rpcUrl);
  const wallet = createWalletClient({ account: privateKeyToAccount(payer.key), chain, transport: http(n.rpcUrl) });
  const hash = await wallet.writeContract({ address: n.asset.address, abi: erc20Abi, functionName: "approve", args: [PERMIT2_ADDRESS, maxUint256] });
  await createPublicClient({ chain, transport: http(n.rpcUrl), pollingInterval: 50 }).waitForTransactionReceipt({ hash });
  await rpc("anvil_setBalance", [payer.address, "0x0"]);
}

/**
 * An `upto` payment of at most `max`, signed by the official 2.27 client for the facilitator account
 * `facilitator`, and the /verify or /settle body asking `charge` of it.
 */
export async function uptoPayment(
  n: PaymentNetwork & Pick<EvmWorldNetwork, "rpcUrl">,
  payer: { key: Hex },
  max: bigint,
  facilitator: Address,
  extra: Record<string, unknown> = {},
) {
  const requirements: PaymentRequirements = {
    scheme: "upto",
    network: n.caip2 as `${string}:${string}`,
    amount: max.toString(),
    asset: n.asset.address,
    payTo: n.payTo,
    maxTimeoutSeconds: 120,
    extra: { name: n.asset.name, version: n.asset.version, assetTransferMethod: "permit2", facilitatorAddress: facilitator, ...extra },
  };
  const client = new x402Client();
  client.register(n.caip2 as `${string}:${string}`, new UptoEvmScheme(privateKeyToAccount(payer.key), { rpcUrl: n.rpcUrl }));
  client.setSpendControls(false); // our local tokens are not the default assets the client knows
  const paymentPayload = await client.createPaymentPayload({ x402Version: 2, resource: { url: "http://local.test/infer" }, accepts: [requirements] });
  const body = (charge: bigint) => ({ x402Version: 2, paymentPayload, paymentRequirements: { ...requirements, amount: charge.toString() } });
  return { requirements, paymentPayload, body };
}
