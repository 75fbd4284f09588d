import { describe, expect, it } from "vitest";
import { acceptedAsset, acceptedAssetAddresses, NetworkConfigError, NetworkRegistry } from "./networks.ts";
import { reasonForVersion, Reason } from "./reasons.ts";

describe("NetworkRegistry", () => {
  const registry = new NetworkRegistry();

  it.each([
    ["base", 8453, "eip155:8453"],
    ["base-sepolia", 84532, "eip155:84532"],
    ["megaeth", 4326, "eip155:4326"],
    ["megaeth-testnet", 6343, "eip155:6343"],
    ["og-devnet", 10744, "eip155:10744"],
    ["og-evm", 10740, "eip155:10740"],
  ])("knows %s as chain %d and %s", (name, chainId, caip2) => {
    expect(registry.resolve(name)?.chainId).toBe(chainId);
    expect(registry.resolve(caip2)?.name).toBe(name);
  });

  it("knows both Solana clusters by name and genesis", () => {
    expect(registry.resolve("solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp")?.name).toBe("solana");
    expect(registry.resolve("solana-devnet")?.caip2).toBe("solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1");
  });

  it("lets configuration override RPC, asset and domain", () => {
    const r = new NetworkRegistry([{ name: "base-sepolia", rpcUrl: "http://127.0.0.1:8545", asset: { address: "0x1111111111111111111111111111111111111111", version: "3" } }]);
    const n = r.get("eip155:84532");
    expect(n.rpcUrl).toBe("http://127.0.0.1:8545");
    expect(n.asset).toMatchObject({ address: "0x1111111111111111111111111111111111111111", name: "USDC", version: "3", decimals: 6 });
    expect(new NetworkRegistry().get("base-sepolia").rpcUrl).toBe("https://sepolia.base.org");
  });

  it("adds an EVM network from configuration alone", () => {
    const r = new NetworkRegistry([{ name: "my-l2", chainId: 777, rpcUrl: "http://l2", asset: { address: "0x2222222222222222222222222222222222222222", decimals: 6, name: "USDC", version: "2" } }]);
    expect(r.resolve("eip155:777")).toMatchObject({ name: "my-l2", family: "evm", asset: { transferMethod: "eip3009" } });
  });

  it("accepts only the configured asset and the extra ones, each settled with the network's transfer method", () => {
    const eurc = "0x3333333333333333333333333333333333333333";
    const r = new NetworkRegistry([{ name: "megaeth", extraAssets: [{ address: eurc, decimals: 6, name: "EURC", version: "1" }] }]);
    const n = r.get("megaeth");
    expect(acceptedAsset(n, eurc.toUpperCase().replace("0X", "0x"))).toMatchObject({ name: "EURC", transferMethod: "permit" });
    expect(acceptedAsset(n, n.asset.address)).toBe(n.asset);
    expect(acceptedAsset(n, "0x4444444444444444444444444444444444444444")).toBeUndefined();
    expect(acceptedAssetAddresses(n)).toEqual([n.asset.address, eurc]);
    const sol = new NetworkRegistry().get("solana");
    expect(acceptedAsset(sol, sol.asset.address.toLowerCase())).toBeUndefined(); // base58 is case-sensitive
  });

  it("refuses a new network without what a payment needs", () => {
    expect(() => new NetworkRegistry([{ name: "half", chainId: 1 }])).toThrow(NetworkConfigError);
  });
});

describe("reasonForVersion", () => {
  it("uses the v1 spelling of the value mismatch for v1 callers only", () => {
    expect(reasonForVersion(Reason.valueMismatch, 1)).toBe("invalid_exact_evm_payload_authorization_value");
    expect(reasonForVersion(Reason.valueMismatch, 2)).toBe("invalid_exact_evm_payload_authorization_value_mismatch");
    expect(reasonForVersion(Reason.signature, 1)).toBe(Reason.signature);
  });
});
