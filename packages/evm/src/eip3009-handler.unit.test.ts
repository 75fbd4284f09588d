import { describe, expect, it } from "vitest";
import { Reason, type NetworkInfo, type PaymentRequest } from "@facilitator/core";
import { encodeAbiParameters, encodeEventTopics, parseAbi, toFunctionSelector, type Address, type Log, type TransactionReceipt } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { createEip3009Handler, eip3009LedgerKey, transferWithAuthorizationCall, type Eip3009EvmPayment } from "./eip3009-handler.ts";
import { signEip3009Payload } from "./eip3009-client.ts";
import { capFees, quoteFromBlock } from "./fees.ts";

const payer = privateKeyToAccount("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d");
const asset: Address = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
const payTo: Address = "0x90F79bf6EB2c4f870365E785982E1f101E93b906";
const network: NetworkInfo = {
  name: "base-sepolia", caip2: "eip155:84532", family: "evm", chainId: 84532, rpcUrl: "http://127.0.0.1:1",
  asset: { address: asset, decimals: 6, name: "USDC", version: "2", transferMethod: "eip3009" }, testnet: true,
};
const handler = createEip3009Handler();
const domain = { name: "USDC", version: "2", chainId: 84532, verifyingContract: asset } as const;
const requestFor = (payload: object): PaymentRequest => ({
  x402Version: 1, scheme: "exact", network, networkId: "base-sepolia",
  requirements: { scheme: "exact", amount: 500n, asset, payTo, maxTimeoutSeconds: 60, extra: { name: "USDC", version: "2" } },
  payload: payload as Record<string, unknown>,
});
const payload = await signEip3009Payload(payer, { domain, to: payTo, value: 500n, nonce: `0x${"AB".repeat(32)}` });
const parsed = handler.parse(requestFor(payload));
if (!parsed.ok) throw new Error("fixture must parse");
const payment = parsed.value as Eip3009EvmPayment;

const transfer = parseAbi(["event Transfer(address indexed from, address indexed to, uint256 value)"]);
const transferLog = (from: Address, to: Address, value: bigint, address: Address = asset) =>
  ({ address, topics: encodeEventTopics({ abi: transfer, eventName: "Transfer", args: { from, to } }), data: encodeAbiParameters([{ type: "uint256" }], [value]) }) as unknown as Log;
const receipt = (logs: Log[]) => ({ transactionHash: `0x${"01".repeat(32)}`, status: "success", logs }) as unknown as TransactionReceipt;

describe("EIP-3009 handler", () => {
  it("keys the ledger by chain, token, payer and authorization nonce, all lower case", () => {
    expect(payment.ledgerKey).toBe(`evm:84532:${asset.toLowerCase()}:${payer.address.toLowerCase()}:0x${"ab".repeat(32)}`);
    expect(eip3009LedgerKey(84532, asset, payer.address, `0x${"AB".repeat(32)}`)).toBe(payment.ledgerKey);
  });

  it("settles 65-byte signatures through the (v, r, s) overload and others through the bytes overload", () => {
    const vrs = toFunctionSelector("transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)");
    const bytes = toFunctionSelector("transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,bytes)");
    expect(transferWithAuthorizationCall(payment).data.slice(0, 10)).toBe(vrs);
    expect(transferWithAuthorizationCall({ ...payment, signature: `0x${"11".repeat(100)}` }).data.slice(0, 10)).toBe(bytes);
    expect(transferWithAuthorizationCall(payment).to).toBe(asset);
  });

  it("accepts a receipt only with the exact Transfer(from, payTo, value) log from the asset", () => {
    expect(handler.checkReceipt(receipt([transferLog(payer.address, payTo, 500n)]), payment)).toBeUndefined();
    const mismatches = [
      [],
      [transferLog(payer.address, payTo, 499n)],
      [transferLog(payer.address, payer.address, 500n)],
      [transferLog(payTo, payTo, 500n)],
      [transferLog(payer.address, payTo, 500n, "0x0000000000000000000000000000000000000001")],
    ];
    for (const logs of mismatches) expect(handler.checkReceipt(receipt(logs), payment)?.reason).toBe(Reason.transferEventMismatch);
  });

  it("offers the token's EIP-712 domain as /supported extra", () => {
    expect(handler.supportedExtra(network)).toEqual({ name: "USDC", version: "2" });
  });
});

describe("quoteFromBlock", () => {
  it("caps the fee at twice the base fee plus the tip, or falls back to a legacy gas price", () => {
    expect(quoteFromBlock(10n, 2n, 99n)).toEqual({ type: "eip1559", maxFeePerGas: 22n, maxPriorityFeePerGas: 2n, baseFeePerGas: 10n });
    expect(quoteFromBlock(undefined, 2n, 99n)).toEqual({ type: "legacy", gasPrice: 99n });
  });
});

describe("capFees", () => {
  const quote = quoteFromBlock(10n, 2n, 99n); // asks 12 now, 22 at most
  it.each([
    ["a cap above the headroom keeps the quote", quote, 30n, quote],
    ["a cap inside the headroom lowers only the ceiling", quote, 15n, { ...quote, maxFeePerGas: 15n }],
    ["a cap exactly at today's price still signs", quote, 12n, { ...quote, maxFeePerGas: 12n }],
    ["a chain asking more than the cap signs nothing", quote, 11n, undefined],
    ["a quote without the block's base fee is held to its ceiling", { type: "eip1559", maxFeePerGas: 22n, maxPriorityFeePerGas: 2n }, 21n, undefined],
    ["a legacy price under the cap", quoteFromBlock(undefined, 0n, 99n), 99n, { type: "legacy", gasPrice: 99n }],
    ["a legacy price over the cap", quoteFromBlock(undefined, 0n, 99n), 98n, undefined],
  ] as const)("%s", (_name, q, cap, expected) => {
    expect(capFees(q, cap)).toEqual(expected);
  });
});
