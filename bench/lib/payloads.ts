/**
 * Payments, signed before any timing starts, as x402 v2 facilitator request bodies (serialised once).
 * EVM: EIP-3009 authorizations signed by the payer (`signEip3009Payload`), each with a fresh random
 * nonce; Permit2 (`exact`, `upto`) signed by the official `@x402/evm` 2.27 clients, unique through
 * Permit2's random 256-bit nonces. Solana: transactions built and partially signed by the official
 * `@x402/svm` client, each unique through the client's random memo.
 */
import { createKeyPairSignerFromBytes, getBase58Encoder, type Address } from "@solana/kit";
import { x402Client } from "@x402/core/client";
import type { PaymentRequirements } from "@x402/core/types";
import { ExactEvmScheme } from "@x402/evm/exact/client";
import { UptoEvmScheme } from "@x402/evm/upto/client";
import { declareEip2612GasSponsoringExtension } from "@x402/extensions";
import { ExactSvmScheme } from "@x402/svm/exact/client";
import type { Hex, LocalAccount } from "viem";
import { privateKeyToAccount } from "viem/accounts";
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

export interface Permit2PaymentTarget {
  rpcUrl: string;
  asset: Pick<EvmChainSpec["asset"], "address" | "name" | "version">;
  payTo: `0x${string}`;
  scheme: "exact" | "upto";
  /** The signed amount (`upto`: the maximum). */
  amount: bigint;
  /** `upto`: what settle charges of the maximum. */
  charge?: bigint;
  /** `upto`: the settling account the witness names, as `/supported` announces it (one per facilitator). */
  facilitator?: `0x${string}`;
  /** `exact`: the route declares eip2612GasSponsoring, so a payer without allowance adds an EIP-2612 permit. */
  sponsored?: boolean;
}

/**
 * One payment per key in `payerKeys` (keys may repeat), as the official client signs it for `t`.
 * Settle bodies of `upto` ask for `t.charge`; verify bodies for the signed maximum, as a resource server does.
 */
export async function permit2Bodies(t: Permit2PaymentTarget, payerKeys: readonly Hex[], operation: "verify" | "settle"): Promise<Buffer[]> {
  const requirements: PaymentRequirements = {
    scheme: t.scheme,
    network: BASE_SEPOLIA.caip2,
    amount: t.amount.toString(),
    asset: t.asset.address,
    payTo: t.payTo,
    // Deadline an hour ahead, as the EIP-3009 payments: no phase may find its payments expired.
    maxTimeoutSeconds: 3600,
    extra: { name: t.asset.name, version: t.asset.version, assetTransferMethod: "permit2", ...(t.facilitator ? { facilitatorAddress: t.facilitator } : {}) },
  };
  const asked = operation === "settle" && t.charge !== undefined ? { ...requirements, amount: t.charge.toString() } : requirements;
  const paymentRequired = { x402Version: 2, resource: RESOURCE, accepts: [requirements], ...(t.sponsored ? { extensions: declareEip2612GasSponsoringExtension() } : {}) };
  const clients = new Map<Hex, x402Client>();
  const clientOf = (key: Hex) => {
    let client = clients.get(key);
    if (!client) {
      const account = privateKeyToAccount(key);
      // The rpcUrl lets the client read its allowance and EIP-2612 nonce, as a wallet would.
      const scheme = t.scheme === "exact" ? new ExactEvmScheme(account, { rpcUrl: t.rpcUrl }) : new UptoEvmScheme(account, { rpcUrl: t.rpcUrl });
      // Our local token is not one of the client's default assets: spend controls would refuse it.
      client = new x402Client().register(BASE_SEPOLIA.caip2, scheme).setSpendControls(false);
      clients.set(key, client);
    }
    return client;
  };
  const one = async (key: Hex) => body(await clientOf(key).createPaymentPayload(paymentRequired as never), asked);
  const bodies: Buffer[] = [];
  // A few at a time: a sponsored payment reads the payer's allowance and permit nonce from the node.
  for (let i = 0; i < payerKeys.length; i += 16) bodies.push(...(await Promise.all(payerKeys.slice(i, i + 16).map(one))));
  return bodies;
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
