import { createRequire } from "node:module";
import type { Abi, Address, Hex } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NetworkRegistry, type AssetInfo, type NetworkInfo } from "@facilitator/core";
import { deployContract, deployTestUsdc, devKey, DevRole, refusingUrl, startAnvil, type AnvilNode } from "@facilitator/devnet";
import { checkEvmNetwork, checkEvmNetworks, formatStartupProblems } from "./startup-checks.ts";

/**
 * Tokens like Circle's FiatToken have no ERC-5267 `eip712Domain()`, only `name()` and `version()`; the
 * project's test tokens (OpenZeppelin EIP712) do have it. These two stand-ins are compiled here with
 * the npm solc, since contracts/ belongs to another part of the project.
 */
const LEGACY_SOURCE = `
// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;
contract LegacyDomainToken {
  function name() external pure returns (string memory) { return "USD Coin"; }
  function version() external pure returns (string memory) { return "2"; }
  function decimals() external pure returns (uint8) { return 6; }
}
contract NoVersionToken {
  function name() external pure returns (string memory) { return "Plain"; }
  function decimals() external pure returns (uint8) { return 18; }
}`;

function compileLegacyTokens(): Record<"LegacyDomainToken" | "NoVersionToken", { abi: Abi; bytecode: Hex }> {
  const solc = createRequire(import.meta.url)("solc");
  const input = {
    language: "Solidity",
    sources: { "Legacy.sol": { content: LEGACY_SOURCE } },
    settings: { evmVersion: "cancun", outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } } },
  };
  const out = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (out.errors ?? []).filter((e: { severity: string }) => e.severity === "error");
  if (errors.length) throw new Error(errors.map((e: { formattedMessage: string }) => e.formattedMessage).join("\n"));
  const get = (name: string) => ({ abi: out.contracts["Legacy.sol"][name].abi, bytecode: `0x${out.contracts["Legacy.sol"][name].evm.bytecode.object}` as Hex });
  return { LegacyDomainToken: get("LegacyDomainToken"), NoVersionToken: get("NoVersionToken") };
}

const deployerKey = devKey(DevRole.deployer);
let chain: AnvilNode; // the right chain id for base-sepolia
let wrongChain: AnvilNode; // deliberately the wrong one
let usdc: Address;
let legacy: Address;
let noVersion: Address;

beforeAll(async () => {
  [chain, wrongChain] = await Promise.all([startAnvil({ chainId: 84532 }), startAnvil({ chainId: 31337 })]);
  const token = { name: "USDC", version: "2", decimals: 6, deployerKey };
  // Deployed first from a fresh deployer on both chains: the same address on each.
  const [onRight, onWrong] = await Promise.all([
    deployTestUsdc({ ...token, rpcUrl: chain.rpcUrl, chainId: 84532 }),
    deployTestUsdc({ ...token, rpcUrl: wrongChain.rpcUrl, chainId: 31337 }),
  ]);
  expect(onWrong).toBe(onRight);
  usdc = onRight;
  const compiled = compileLegacyTokens();
  legacy = await deployContract({ rpcUrl: chain.rpcUrl, chainId: 84532, deployerKey, artifact: compiled.LegacyDomainToken });
  noVersion = await deployContract({ rpcUrl: chain.rpcUrl, chainId: 84532, deployerKey, artifact: compiled.NoVersionToken });
});
afterAll(async () => {
  await Promise.all([chain?.stop(), wrongChain?.stop()]);
});

/** base-sepolia as an operator would configure it, pointed at a local chain. */
const baseSepolia = (rpcUrl: string, asset: Partial<AssetInfo> = {}): NetworkInfo =>
  new NetworkRegistry([{ name: "base-sepolia", rpcUrl, asset: { address: usdc, name: "USDC", version: "2", decimals: 6, ...asset } }]).get("base-sepolia");

describe("checkEvmNetwork", () => {
  it("finds nothing when chain and configuration agree", async () => {
    expect(await checkEvmNetwork({ network: baseSepolia(chain.rpcUrl) })).toEqual([]);
  });

  it("reports an RPC serving another chain id, naming both", async () => {
    const problems = await checkEvmNetwork({ network: baseSepolia(wrongChain.rpcUrl) });
    expect(problems).toEqual([
      {
        network: "base-sepolia", check: "chainId", severity: "error", expected: "84532", actual: "31337",
        message: "base-sepolia: the RPC serves chain id 31337, but base-sepolia is configured with chain id 84532",
      },
    ]);
  });

  it("reports an asset address without code, and reads nothing more from it", async () => {
    const nowhere = "0x000000000000000000000000000000000000bEEF";
    const problems = await checkEvmNetwork({ network: baseSepolia(chain.rpcUrl, { address: nowhere }) });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ check: "assetCode", severity: "error" });
    expect(problems[0]!.message).toBe(`base-sepolia: asset ${nowhere} has no contract code on chain 84532 (wrong address, or the RPC serves another chain)`);
  });

  it.each([
    ["domain version", { version: "1" }, "domainVersion", '"2" on chain, but "1" is configured'],
    ["domain name", { name: "USD Coin" }, "domainName", '"USDC" on chain, but "USD Coin" is configured'],
    ["decimals", { decimals: 18 }, "decimals", "6 decimals on chain, but 18 are configured"],
  ] as const)("reports a wrong %s with both values (ERC-5267 token)", async (_label, asset, check, text) => {
    const problems = await checkEvmNetwork({ network: baseSepolia(chain.rpcUrl, asset) });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ network: "base-sepolia", check, severity: "error" });
    expect(problems[0]!.message).toContain(text);
    expect(problems[0]!.message).toMatch(/^base-sepolia: /);
  });

  it("reports every problem at once", async () => {
    const problems = await checkEvmNetwork({ network: baseSepolia(wrongChain.rpcUrl, { version: "1", decimals: 18 }) });
    expect(problems.map((p) => p.check)).toEqual(["chainId", "domainVersion", "decimals"]);
  });

  it("falls back to name() and version() for tokens without eip712Domain()", async () => {
    expect(await checkEvmNetwork({ network: baseSepolia(chain.rpcUrl, { address: legacy, name: "USD Coin" }) })).toEqual([]);
    const wrong = await checkEvmNetwork({ network: baseSepolia(chain.rpcUrl, { address: legacy, name: "USDC", version: "1" }) });
    expect(wrong.map((p) => [p.check, p.expected, p.actual])).toEqual([
      ["domainName", "USDC", "USD Coin"],
      ["domainVersion", "1", "2"],
    ]);
  });

  it("warns when the token has no readable version at all", async () => {
    const problems = await checkEvmNetwork({ network: baseSepolia(chain.rpcUrl, { address: noVersion, name: "Plain", decimals: 18 }) });
    expect(problems).toEqual([expect.objectContaining({ check: "domainVersion", severity: "warning" })]);
  });

  it("reports an RPC that does not answer, without its URL", async () => {
    const url = `${refusingUrl}/v2/secret-api-key`;
    const problems = await checkEvmNetwork({ network: baseSepolia(url), timeoutMs: 2000 });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ check: "rpc", severity: "error" });
    expect(problems[0]!.message).toMatch(/^base-sepolia: the RPC does not answer eth_chainId/);
    expect(problems[0]!.message).not.toContain("secret-api-key");
  });
});

describe("checkEvmNetworks", () => {
  it("checks every EVM network together and skips Solana ones", async () => {
    const registry = new NetworkRegistry([
      { name: "base-sepolia", rpcUrl: chain.rpcUrl, asset: { address: usdc, name: "USDC", version: "2", decimals: 6 } },
      { name: "og-evm", rpcUrl: wrongChain.rpcUrl, asset: { address: usdc, name: "USDC", version: "2", decimals: 6 } },
    ]);
    const problems = await checkEvmNetworks(["base-sepolia", "og-evm", "solana-devnet"].map((n) => registry.get(n)));
    expect(problems.map((p) => `${p.network}:${p.check}`)).toEqual(["og-evm:chainId"]);
    expect(formatStartupProblems(problems)).toBe(
      "  - [error] og-evm: the RPC serves chain id 31337, but og-evm is configured with chain id 10740",
    );
  });
});
