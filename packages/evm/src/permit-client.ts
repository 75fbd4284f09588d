/**
 * The payer's side of an ERC-2612 permit payment: `signPermitPayload`, and `PermitExactEvmScheme`, a
 * `SchemeNetworkClient` for `@x402/core`'s `x402Client` (and so `@x402/fetch`), which reads the
 * payer's permit nonce over RPC and signs a permit for the spender the requirements name.
 */
import { BUILTIN_NETWORKS, NetworkRegistry, type PermitPayload } from "@facilitator/core";
import type { x402Client } from "@x402/core/client";
import type { DefaultAsset, Network, PaymentPayloadContext, PaymentPayloadResult, PaymentRequirements, SchemeNetworkClient } from "@x402/core/types";
import { createPublicClient, getAddress, http, isAddress, type Address, type Hex, type LocalAccount, type PublicClient } from "viem";
import type { TokenDomain } from "./eip3009.ts";
import { PERMIT_TRANSFER_METHOD, permitTypedData } from "./permit.ts";
import { permitTokenAbi } from "./permit-reads.ts";

/** Anything that signs EIP-712 typed data for an address, e.g. a viem `LocalAccount`. */
export type PermitSigner = Pick<LocalAccount, "address" | "signTypedData">;

export interface PermitPaymentInput {
  domain: TokenDomain;
  spender: Address;
  value: bigint;
  /** The token's `nonces(owner)`. */
  nonce: bigint;
  /** Unix seconds. */
  deadline: bigint;
  /** The token holder; defaults to the signer. For an ERC-1271 wallet, the wallet (its owner signs). */
  owner?: Address;
}

/** Signs `Permit(owner, spender, value, nonce, deadline)` and returns the x402 `exact` payload (see PERMIT.md). */
export async function signPermitPayload(account: PermitSigner, input: PermitPaymentInput): Promise<PermitPayload> {
  const permit = { owner: input.owner ?? account.address, spender: input.spender, value: input.value, nonce: input.nonce, deadline: input.deadline };
  const signature: Hex = await account.signTypedData(permitTypedData(input.domain, permit));
  return {
    signature,
    permit: {
      owner: permit.owner,
      spender: permit.spender,
      value: permit.value.toString(),
      nonce: permit.nonce.toString(),
      deadline: permit.deadline.toString(),
    },
  };
}

export interface PermitSchemeOptions {
  /** JSON-RPC endpoint of the chain, to read `nonces(owner)`. */
  rpcUrl: string;
  /** Used for requirements that are not ERC-2612 permit ones (e.g. `@x402/evm`'s ExactEvmScheme). */
  fallback?: SchemeNetworkClient;
}

/** The built-in networks whose payment asset has only ERC-2612 (MegaETH mainnet and testnet). */
const PERMIT_NETWORKS = BUILTIN_NETWORKS.filter((n) => n.asset.transferMethod === "permit");
const registry = new NetworkRegistry();

export class PermitExactEvmScheme implements SchemeNetworkClient {
  readonly scheme = "exact";
  private readonly client: PublicClient;

  constructor(
    private readonly signer: PermitSigner,
    private readonly options: PermitSchemeOptions,
  ) {
    this.client = createPublicClient({ transport: http(options.rpcUrl) }) as PublicClient;
  }

  /** The known USDm deployments, so `x402Client` spend controls can price them in dollars. */
  findDefaultAsset = (asset: string, network: Network): DefaultAsset | undefined => {
    const n = registry.resolve(network);
    if (!n || n.asset.transferMethod !== "permit" || !isAddress(asset) || getAddress(asset) !== getAddress(n.asset.address)) {
      return this.options.fallback?.findDefaultAsset?.(asset, network);
    }
    return { asset: n.asset.address, decimals: n.asset.decimals, symbol: "USDm" };
  };

  async createPaymentPayload(x402Version: number, requirements: PaymentRequirements, context?: PaymentPayloadContext): Promise<PaymentPayloadResult> {
    const extra = requirements.extra ?? {};
    if (extra.assetTransferMethod !== PERMIT_TRANSFER_METHOD) {
      if (this.options.fallback) return this.options.fallback.createPaymentPayload(x402Version, requirements, context);
      throw new Error(`requirements on ${requirements.network} are not ERC-2612 permit ones (extra.assetTransferMethod is ${JSON.stringify(extra.assetTransferMethod)}, expected "${PERMIT_TRANSFER_METHOD}")`);
    }
    const { name, version, spender } = extra;
    if (typeof name !== "string" || typeof version !== "string" || typeof spender !== "string" || !isAddress(spender)) {
      throw new Error(`permit requirements need extra.name, extra.version and extra.spender (the facilitator's address); got ${JSON.stringify(extra)}`);
    }
    const chainId = chainIdOf(requirements.network);
    // v1 requirements carry the amount as maxAmountRequired.
    const amount = BigInt((requirements as { maxAmountRequired?: string }).maxAmountRequired ?? requirements.amount);
    if (context?.maxAmountPerPayment !== undefined && amount > BigInt(context.maxAmountPerPayment)) {
      throw new Error(`payment of ${amount} exceeds the spend cap ${context.maxAmountPerPayment}`);
    }
    const asset = getAddress(requirements.asset);
    const nonce = await this.client.readContract({ address: asset, abi: permitTokenAbi, functionName: "nonces", args: [this.signer.address] });
    const payload = await signPermitPayload(this.signer, {
      domain: { name, version, chainId, verifyingContract: asset },
      spender: getAddress(spender),
      value: amount,
      nonce,
      deadline: BigInt(Math.floor(Date.now() / 1000) + requirements.maxTimeoutSeconds),
    });
    if (x402Version === 1) {
      return { x402Version, scheme: requirements.scheme, network: requirements.network, payload } as PaymentPayloadResult;
    }
    return { x402Version, payload };
  }
}

function chainIdOf(network: string): number {
  const caip = /^eip155:(\d+)$/.exec(network);
  const chainId = caip ? Number(caip[1]) : registry.resolve(network)?.chainId;
  if (!chainId) throw new Error(`cannot tell the chain id of network ${network}`);
  return chainId;
}

export interface RegisterPermitSchemeConfig extends PermitSchemeOptions {
  signer: PermitSigner;
  /** CAIP-2 ids to pay with permits. Default: MegaETH mainnet and testnet (with their v1 names). */
  networks?: Network[];
}

/**
 * Registers `PermitExactEvmScheme` for x402 v2 (CAIP-2 ids) and v1 (names) on the permit networks,
 * so `wrapFetchWithPayment(fetch, client)` pays their routes. Exact network entries take precedence
 * over an `eip155:*` registration of `@x402/evm`, which keeps paying every other EVM network.
 */
export function registerPermitScheme(client: x402Client, config: RegisterPermitSchemeConfig): x402Client {
  const scheme = new PermitExactEvmScheme(config.signer, config);
  const networks = config.networks ?? PERMIT_NETWORKS.map((n) => n.caip2 as Network);
  for (const network of networks) {
    client.register(network, scheme);
    const v1Name = registry.resolve(network)?.name;
    if (v1Name) client.registerV1(v1Name, scheme);
  }
  return client;
}
