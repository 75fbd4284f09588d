import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPublicClient, http, parseAbi, type Address } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { DevRole, devKey } from "./accounts.ts";
import { startAnvil, type AnvilNode } from "./anvil.ts";
import { deployContract, deployErc1271Wallet, deployPermitToken, deployTestUsdc, localChain, mintTokens } from "./deploy.ts";
import { CHAIN_IDS } from "./world.ts";

const CHAIN_ID = CHAIN_IDS.megaeth;
const erc20 = parseAbi([
  "function balanceOf(address) view returns (uint256)",
  "function owner() view returns (address)",
  "function symbol() view returns (string)",
]);

let anvil: AnvilNode;
let target: { rpcUrl: string; chainId: number; deployerKey: `0x${string}` };
const deployer = privateKeyToAccount(devKey(DevRole.deployer)).address;
const payTo = privateKeyToAccount(devKey(DevRole.payTo)).address;

beforeAll(async () => {
  anvil = await startAnvil({ chainId: CHAIN_ID });
  target = { rpcUrl: anvil.rpcUrl, chainId: CHAIN_ID, deployerKey: devKey(DevRole.deployer) };
});

afterAll(async () => {
  await anvil?.stop();
});

const client = () => createPublicClient({ chain: localChain(CHAIN_ID, anvil.rpcUrl), transport: http(anvil.rpcUrl) });

describe("deploy helpers", () => {
  it("deploys and mints many times in parallel from one key (no nonce collisions)", async () => {
    const tokens = await Promise.all([
      deployTestUsdc({ ...target, name: "USDC", version: "2", decimals: 6 }),
      deployPermitToken({ ...target, name: "MegaUSD", version: "1", decimals: 18 }),
      deployTestUsdc({ ...target, name: "OUSDC", version: "2", decimals: 6, symbol: "OUSDC" }),
    ]);
    expect(new Set(tokens).size).toBe(3);
    await Promise.all(tokens.flatMap((token) => [1n, 2n, 3n].map((amount) => mintTokens({ ...target, token, to: payTo, amount }))));
    for (const token of tokens) {
      expect(await client().readContract({ address: token, abi: erc20, functionName: "balanceOf", args: [payTo] })).toBe(6n);
      expect(await client().readContract({ address: token, abi: erc20, functionName: "owner" })).toBe(deployer);
    }
    const symbols = await Promise.all(tokens.map((address) => client().readContract({ address, abi: erc20, functionName: "symbol" })));
    expect(symbols).toEqual(["USDC", "USDm", "OUSDC"]);
  });

  it("deploys an ERC-1271 wallet owned by the given address", async () => {
    const wallet = await deployErc1271Wallet({ ...target, owner: payTo });
    const owner = await client().readContract({ address: wallet, abi: erc20, functionName: "owner" });
    expect(owner).toBe(payTo);
  });

  it("throws a clear error when the constructor reverts", async () => {
    // Init code that reverts at once: PUSH1 0, PUSH1 0, REVERT.
    const reverting = { abi: [], bytecode: "0x60006000fd" as const };
    await expect(deployContract({ ...target, artifact: reverting })).rejects.toThrow(/^deploy contract failed: /);
  });

  it("names the missing artifact and the fix", async () => {
    await expect(deployContract({ ...target, artifact: "NoSuchContract" })).rejects.toThrow(/NoSuchContract.*pnpm compile/);
  });

  it("reports who was not allowed to mint", async () => {
    const token: Address = await deployTestUsdc({ ...target, name: "USDC", version: "2", decimals: 6 });
    const stranger = { ...target, deployerKey: devKey(DevRole.thirdParty) };
    await expect(mintTokens({ ...stranger, token, to: payTo, amount: 1n })).rejects.toThrow(
      /failed: reverted with OwnableUnauthorizedAccount\(0x/,
    );
  });
});
