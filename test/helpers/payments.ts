/** Payments as a client sends them to /verify and /settle, signed by the local world's payer. */
import type { Address, Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import type { EvmWorldNetwork } from "@facilitator/devnet";
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
