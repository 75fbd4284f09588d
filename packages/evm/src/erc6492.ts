/**
 * EIP-6492: a smart wallet not deployed yet signs with its factory call wrapped around the signature
 * (`abi.encode(factory, factoryCalldata, signature) ++ magic`). The wrapper is taken off before any
 * transfer method reads the payload; the signature is proven by simulating the deployment and the
 * wallet's ERC-1271 check in one `eth_call` (the universal validator, through viem), and the wallet is
 * deployed before its payment settles. Only configured factories: a factory call is code of the
 * caller's choosing, running on our gas.
 */
import { Reason, reject, type PaymentRequest, type Rejection } from "@facilitator/core";
import { getAddress, isErc6492Signature, parseErc6492Signature, type Address, type Hex, type PublicClient } from "viem";
import { verifyHash } from "viem/actions";
import { hasCode } from "./batched-reads.ts";
import { isTransientRpcError } from "./rpc-errors.ts";

/** The factory call that deploys the payer's wallet. */
export interface WalletDeployment {
  factory: Address;
  data: Hex;
  /** The signature with its EIP-6492 wrapper, for the universal validator. */
  wrapped: Hex;
}

/**
 * The request with the payload's signature unwrapped, and the deployment the wrapper named (if any).
 * Every EVM payload keeps its signature in `payload.signature`.
 */
export function unwrapErc6492(request: PaymentRequest): { request: PaymentRequest; deployment?: WalletDeployment } {
  const signature = request.payload.signature;
  if (typeof signature !== "string" || !/^0x[0-9a-fA-F]*$/.test(signature) || !isErc6492Signature(signature as Hex)) return { request };
  let parsed: ReturnType<typeof parseErc6492Signature>;
  try {
    parsed = parseErc6492Signature(signature as Hex);
  } catch {
    return { request }; // not decodable: the transfer method refuses the signature as it stands
  }
  if (!parsed.address || !parsed.data) return { request };
  return {
    request: { ...request, payload: { ...request.payload, signature: parsed.signature } },
    deployment: { factory: getAddress(parsed.address), data: parsed.data, wrapped: signature as Hex },
  };
}

/** A factory outside the allowlist is refused before anything is simulated or sent. */
export function checkFactory(deployment: WalletDeployment, allowed: readonly Address[]): Rejection | undefined {
  return allowed.includes(deployment.factory)
    ? undefined
    : reject(Reason.eip6492FactoryNotAllowed, `the EIP-6492 signature deploys through factory ${deployment.factory}, which is not allowed here (EIP6492_ALLOWED_FACTORIES)`);
}

/**
 * For a payer without code: undefined when the deployment the signature names would make a wallet that
 * accepts the signature over `digest` (simulated, nothing sent). Throws only when the node cannot be reached.
 */
export async function proveCounterfactualSignature(
  client: PublicClient,
  p: { payer: Address; digest: Hex },
  deployment: WalletDeployment,
  reason: Rejection["reason"],
): Promise<Rejection | undefined> {
  try {
    const valid = await verifyHash(client, { address: p.payer, hash: p.digest, signature: deployment.wrapped });
    return valid ? undefined : reject(reason, `the wallet ${p.payer} that factory ${deployment.factory} would deploy does not accept the signature`);
  } catch (e) {
    if (isTransientRpcError(e)) throw e;
    return reject(reason, `the EIP-6492 signature of ${p.payer} could not be checked: the deployment or the wallet's check reverted`);
  }
}

/** True when `payer` has code now (deployed already). */
export async function isDeployed(client: PublicClient, payer: Address): Promise<boolean> {
  const [code] = await Promise.allSettled([client.request({ method: "eth_getCode", params: [payer, "latest"] })]);
  return hasCode(code!);
}
