/**
 * The resource server's side for ERC-2612 permit networks, for `@x402/core`'s `x402ResourceServer`
 * (and so `@x402/express`). `@x402/evm`'s ExactEvmScheme cannot serve them: it knows only the
 * `eip3009` and `permit2` transfer methods and refuses any other `extra.assetTransferMethod`. This
 * scheme builds requirements with the token domain, `assetTransferMethod: "erc2612-permit"` and the
 * `spender` the facilitator advertises in `/supported`, which the payer's permit must name.
 */
import { NetworkRegistry } from "@facilitator/core";
import type { AssetAmount, Network, PaymentRequirements, Price, SchemeNetworkServer, SupportedKind } from "@x402/core/types";
import { convertToTokenAmount, parseMoney } from "@x402/core/utils";
import { PERMIT_TRANSFER_METHOD } from "./permit.ts";

export interface PermitAsset {
  address: string;
  decimals: number;
  /** EIP-712 domain name and version of the token. */
  name: string;
  version: string;
}

const registry = new NetworkRegistry();

export class PermitExactServerScheme implements SchemeNetworkServer {
  readonly scheme = "exact";
  readonly defaultAssetTransferMethod = PERMIT_TRANSFER_METHOD;
  readonly paymentFlows = { [PERMIT_TRANSFER_METHOD]: { supported: ["authorization", "upfront"] as const, default: "authorization" as const } };

  /** @param assets Money prices (`"$0.01"`) are paid in these per network; default: the built-in USDm deployments. */
  constructor(private readonly assets: Readonly<Record<string, PermitAsset>> = {}) {}

  private assetOf(network: Network): PermitAsset | undefined {
    if (this.assets[network]) return this.assets[network];
    const n = registry.resolve(network);
    if (n?.asset.transferMethod !== "permit" || !n.asset.name || !n.asset.version) return undefined;
    return { address: n.asset.address, decimals: n.asset.decimals, name: n.asset.name, version: n.asset.version };
  }

  async parsePrice(price: Price, network: Network): Promise<AssetAmount> {
    if (typeof price === "object" && price !== null && "amount" in price) {
      if (!price.asset) throw new Error(`an asset address is required for an AssetAmount on ${network}`);
      return { amount: price.amount, asset: price.asset, extra: price.extra ?? {} };
    }
    const asset = this.assetOf(network);
    if (!asset) throw new Error(`no ERC-2612 payment asset is known for ${network}: price routes there as {amount, asset, extra: {name, version}}`);
    const { amount } = parseMoney(price);
    return { amount: convertToTokenAmount(amount, asset.decimals), asset: asset.address, extra: { name: asset.name, version: asset.version } };
  }

  getAssetDecimals(asset: string, network: Network): number | undefined {
    const known = this.assetOf(network);
    return known && known.address.toLowerCase() === asset.toLowerCase() ? known.decimals : undefined;
  }

  async enhancePaymentRequirements(requirements: PaymentRequirements, supportedKind: SupportedKind): Promise<PaymentRequirements> {
    const offered = supportedKind.extra ?? {};
    if (typeof offered.spender !== "string") {
      throw new Error(`the facilitator advertises no permit spender for ${requirements.network} (its /supported kind has no extra.spender)`);
    }
    const known = this.assetOf(requirements.network);
    const domain = known && known.address.toLowerCase() === requirements.asset.toLowerCase() ? { name: known.name, version: known.version } : {};
    return {
      ...requirements,
      extra: { ...domain, ...requirements.extra, assetTransferMethod: PERMIT_TRANSFER_METHOD, spender: offered.spender },
    };
  }

  validateFacilitatorSupport(network: Network, supportedKind: SupportedKind): string | void {
    const extra = supportedKind.extra ?? {};
    if (extra.assetTransferMethod !== PERMIT_TRANSFER_METHOD || typeof extra.spender !== "string") {
      return `the facilitator does not settle ERC-2612 permit payments on ${network} (its /supported kind lacks assetTransferMethod "${PERMIT_TRANSFER_METHOD}" and a spender)`;
    }
  }
}
