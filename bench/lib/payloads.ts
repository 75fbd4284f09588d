/**
 * Payments, signed before any timing starts, as x402 v2 facilitator request bodies (serialised once).
 * EVM: EIP-3009 authorizations signed by the payer (`signEip3009Payload`), each with a fresh random
 * nonce. Solana: transactions built and partially signed by the official `@x402/svm` client, each
 * unique through the client's random memo.
 */
import { createKeyPairSignerFromBytes, getBase58Encoder, type Address } from "@solana/kit";
import { x402Client } from "@x402/core/client";
import { ExactSvmScheme } from "@x402/svm/exact/client";
import type { LocalAccount } from "viem";
import { signEip3009Payload } from "@facilitator/evm";
import { BASE_SEPOLIA, SOLANA_DEVNET, type EvmChainSpec } from "./spec.ts";

const RESOURCE = { url: "http://127.0.0.1/bench", description: "benchmark payment", mimeType: "application/json" };

/** How a payment body is made; `n` fresh ones per call. */
export type BodyFactory = (n: number) => Promise<Buffer[]>;

function body(paymentPayload: object, requirements: object): Buffer {
  return Buffer.from(JSON.stringify({ x402Version: 2, paymentPayload, paymentRequirements: requirements }));
}

export function evmRequirements(asset: EvmChainSpec["asset"], payTo: Address | `0x${string}`, amount: bigint) {
  return {
    scheme: "exact",
    network: BASE_SEPOLIA.caip2,
    amount: amount.toString(),
    asset: asset.address,
    payTo,
    maxTimeoutSeconds: 60,
    extra: { name: asset.name, version: asset.version },
  };
}

export function evmBodyFactory(payer: LocalAccount, asset: EvmChainSpec["asset"], payTo: `0x${string}`, amount: bigint): BodyFactory {
  const requirements = evmRequirements(asset, payTo, amount);
  const domain = { name: asset.name, version: asset.version, chainId: BASE_SEPOLIA.chainId, verifyingContract: asset.address };
  return async (n) => {
    // Valid for an hour: no phase may find its payments expired.
    const validBefore = BigInt(Math.floor(Date.now() / 1000) + 3600);
    const bodies: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      const payload = await signEip3009Payload(payer, { domain, to: payTo, value: amount, validBefore });
      bodies.push(body({ x402Version: 2, resource: RESOURCE, accepted: requirements, payload }, requirements));
    }
    return bodies;
  };
}

export interface SvmPaymentTarget {
  rpcUrl: string;
  mint: Address;
  payerSecretKey: string;
  payTo: Address;
  /** The facilitator's fee payer the requirements name (each facilitator has its own). */
  feePayer: Address;
}

export async function svmBodyFactory(t: SvmPaymentTarget, amount: bigint): Promise<BodyFactory> {
  const signer = await createKeyPairSignerFromBytes(getBase58Encoder().encode(t.payerSecretKey));
  // Our local mint is not one of the client's default assets: spend controls would refuse it.
  const client = new x402Client().register("solana:*", new ExactSvmScheme(signer, { rpcUrl: t.rpcUrl })).setSpendControls(false);
  const requirements = {
    scheme: "exact",
    network: SOLANA_DEVNET.caip2,
    amount: amount.toString(),
    asset: t.mint,
    payTo: t.payTo,
    maxTimeoutSeconds: 60,
    extra: { feePayer: t.feePayer },
  } as const;
  const one = async () => {
    const paymentPayload = await client.createPaymentPayload({ x402Version: 2, resource: RESOURCE, accepts: [requirements] } as never);
    return body(paymentPayload, requirements);
  };
  return async (n) => {
    const bodies: Buffer[] = [];
    // A few at a time: each fetches a recent blockhash from the node.
    while (bodies.length < n) {
      bodies.push(...(await Promise.all(Array.from({ length: Math.min(16, n - bodies.length) }, one))));
    }
    return bodies;
  };
}
