import { beforeAll, describe, expect, it } from "vitest";
import { Reason } from "@facilitator/core";
import { deployErc1271Wallet, mintTokens } from "@facilitator/devnet";
import { parseEventLogs, parseAbi, type Hash } from "viem";
import type { EvmExactMechanism } from "./mechanism.ts";
import { signEip3009Payload } from "./eip3009-client.ts";
import { startChainWithMechanism, startTestChain, type TestChain } from "./testing/index.ts";

let chain: TestChain;
let mechanism: EvmExactMechanism;

beforeAll(async () => {
  const fx = await startChainWithMechanism(startTestChain);
  ({ chain, mechanism } = fx);
  return fx.stop;
});

describe("exact EVM (EIP-3009) settle", () => {
  it("moves the funds once and answers every repeat with duplicate_settlement and the first hash", async () => {
    const request = await chain.pay({ value: 12_345n });
    const [payerBefore, payToBefore] = [await chain.balanceOf(chain.payer.address), await chain.balanceOf(chain.payTo)];
    const settled = await mechanism.settle(request);
    expect(settled).toMatchObject({ success: true, payer: chain.payer.address, amount: 12_345n });
    const hash = settled.transaction as Hash;
    expect(hash).toMatch(/^0x[0-9a-f]{64}$/);
    expect(await chain.balanceOf(chain.payer.address)).toBe(payerBefore - 12_345n);
    expect(await chain.balanceOf(chain.payTo)).toBe(payToBefore + 12_345n);

    const receipt = await chain.client.getTransactionReceipt({ hash });
    expect(receipt.from.toLowerCase()).toBe(chain.facilitator.toLowerCase());
    const transfers = parseEventLogs({ abi: parseAbi(["event Transfer(address indexed from, address indexed to, uint256 value)"]), logs: receipt.logs });
    expect(transfers.map((t) => t.args)).toEqual([{ from: chain.payer.address, to: chain.payTo, value: 12_345n }]);
    // gas limit comes from an estimate with a margin, not a fixed number
    const tx = await chain.client.getTransaction({ hash });
    expect(tx.gas).toBeGreaterThan(receipt.gasUsed);
    expect(tx.gas).toBeLessThan(receipt.gasUsed * 2n);

    const mined = await chain.minedCount();
    const again = await mechanism.settle(request);
    expect(again).toMatchObject({ success: false, reason: Reason.duplicateSettlement, transaction: hash });
    expect(await chain.minedCount()).toBe(mined);
    expect(await chain.balanceOf(chain.payTo)).toBe(payToBefore + 12_345n);
  });

  it("verifies and settles a payment from an ERC-1271 contract wallet", async () => {
    const wallet = await deployErc1271Wallet({ rpcUrl: chain.anvil.rpcUrl, chainId: chain.network.chainId!, deployerKey: chain.deployerKey, owner: chain.payer.address });
    await mintTokens({ rpcUrl: chain.anvil.rpcUrl, chainId: chain.network.chainId!, deployerKey: chain.deployerKey, token: chain.asset, to: wallet, amount: 5000n });
    const payload = await signEip3009Payload(chain.payer, { domain: chain.domain, to: chain.payTo, value: 5000n, from: wallet });
    const request = chain.request(payload, { amount: 5000n });
    expect(await mechanism.verify(request)).toEqual({ isValid: true, payer: wallet });
    const settled = await mechanism.settle(request);
    expect(settled).toMatchObject({ success: true, payer: wallet });
    expect(await chain.balanceOf(wallet)).toBe(0n);
  });

  it("refuses an ERC-1271 wallet payment its owner did not sign, before claiming it, sending nothing", async () => {
    const wallet = await deployErc1271Wallet({ rpcUrl: chain.anvil.rpcUrl, chainId: chain.network.chainId!, deployerKey: chain.deployerKey, owner: chain.facilitator });
    await mintTokens({ rpcUrl: chain.anvil.rpcUrl, chainId: chain.network.chainId!, deployerKey: chain.deployerKey, token: chain.asset, to: wallet, amount: 5000n });
    const payload = await signEip3009Payload(chain.payer, { domain: chain.domain, to: chain.payTo, value: 5000n, from: wallet });
    const mined = await chain.minedCount();
    const settled = await mechanism.settle(chain.request(payload, { amount: 5000n }));
    expect(settled).toMatchObject({ success: false, reason: Reason.signature, transaction: "" });
    expect((settled as { message: string }).message).toContain("isValidSignature");
    expect(await chain.minedCount()).toBe(mined);
  });

  it("lists its signer and the token's EIP-712 domain for /supported", () => {
    expect(mechanism.signers()).toEqual([chain.facilitator]);
    expect(mechanism.supportedExtra(chain.network)).toEqual({ name: "USDC", version: "2" });
    expect(mechanism.networks.map((n) => n.caip2)).toEqual(["eip155:84532"]);
  });
});
