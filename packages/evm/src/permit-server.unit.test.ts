import { describe, expect, it } from "vitest";
import { PermitExactServerScheme } from "./permit-server.ts";
import { PermitExactEvmScheme } from "./permit-client.ts";

const USDM = "0xFAfDdbb3FC7688494971a79cc65DCa3EF82079E7";
const spender = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const kind = { x402Version: 2, scheme: "exact", network: "eip155:4326" as const, extra: { name: "MegaUSD", version: "1", assetTransferMethod: "erc2612-permit", spender } };
const base = { scheme: "exact", network: "eip155:4326" as const, amount: "10000000000000000", asset: USDM, payTo: spender, maxTimeoutSeconds: 60, extra: {} };

describe("PermitExactServerScheme (resource server side)", () => {
  const scheme = new PermitExactServerScheme();

  it("prices dollars in USDm (18 decimals) with its EIP-712 domain", async () => {
    expect(await scheme.parsePrice("$0.01", "eip155:4326")).toEqual({ amount: "10000000000000000", asset: USDM, extra: { name: "MegaUSD", version: "1" } });
    expect(scheme.getAssetDecimals(USDM.toLowerCase(), "eip155:4326")).toBe(18);
  });

  it("passes an explicit asset amount through", async () => {
    const price = { amount: "5", asset: "0x5FbDB2315678afecb367f032d93F642f64180aa3", extra: { name: "MegaUSD", version: "1" } };
    expect(await scheme.parsePrice(price, "eip155:4326")).toEqual(price);
  });

  it("refuses dollar prices on a network without a known permit asset", async () => {
    await expect(scheme.parsePrice("$0.01", "eip155:84532")).rejects.toThrow(/no ERC-2612 payment asset/);
  });

  it("copies the facilitator's spender and transfer method into the requirements", async () => {
    expect((await scheme.enhancePaymentRequirements(base, kind)).extra).toEqual({ name: "MegaUSD", version: "1", assetTransferMethod: "erc2612-permit", spender });
  });

  it("reports a facilitator that does not settle permits on the network", async () => {
    expect(scheme.validateFacilitatorSupport("eip155:4326", kind)).toBeUndefined();
    expect(scheme.validateFacilitatorSupport("eip155:4326", { ...kind, extra: { name: "MegaUSD", version: "1" } })).toMatch(/does not settle ERC-2612/);
    await expect(scheme.enhancePaymentRequirements(base, { ...kind, extra: {} })).rejects.toThrow(/no permit spender/);
  });
});

describe("PermitExactEvmScheme (client side) without RPC", () => {
  const signer = { address: spender, signTypedData: async () => "0x" as const } as never;

  it("hands requirements that are not permit ones to its fallback, or refuses them", async () => {
    const fallback = { scheme: "exact", createPaymentPayload: async () => ({ x402Version: 2, payload: { from: "fallback" } }) };
    const eip3009 = { ...base, network: "eip155:84532" as const, extra: { name: "USDC", version: "2" } };
    expect(await new PermitExactEvmScheme(signer, { rpcUrl: "http://127.0.0.1:1", fallback }).createPaymentPayload(2, eip3009)).toEqual({ x402Version: 2, payload: { from: "fallback" } });
    await expect(new PermitExactEvmScheme(signer, { rpcUrl: "http://127.0.0.1:1" }).createPaymentPayload(2, eip3009)).rejects.toThrow(/not ERC-2612 permit/);
  });

  it("needs the spender in extra", async () => {
    const noSpender = { ...base, extra: { name: "MegaUSD", version: "1", assetTransferMethod: "erc2612-permit" } };
    await expect(new PermitExactEvmScheme(signer, { rpcUrl: "http://127.0.0.1:1" }).createPaymentPayload(2, noSpender)).rejects.toThrow(/extra.spender/);
  });

  it("knows the USDm deployments for dollar spend caps", () => {
    const scheme = new PermitExactEvmScheme(signer, { rpcUrl: "http://127.0.0.1:1" });
    expect(scheme.findDefaultAsset(USDM, "eip155:4326")).toEqual({ asset: USDM, decimals: 18, symbol: "USDm" });
    expect(scheme.findDefaultAsset("0x5FbDB2315678afecb367f032d93F642f64180aa3", "eip155:4326")).toBeUndefined();
  });
});
