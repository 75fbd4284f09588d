import { describe, expect, it } from "vitest";
import { Reason } from "@facilitator/core";
import { encodeFunctionData, erc20Abi, maxUint256, type Address, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { approvalFunding, sponsoredApproval, type SponsoredApproval } from "./permit2-approval.ts";
import { PERMIT2_ADDRESS } from "./permit2.ts";

const payer = privateKeyToAccount("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d");
const asset: Address = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
const other: Address = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65";
const chainId = 84532;

/** The payer's approve transaction as the official client signs it, with fields to break. */
async function approveTx(over: { to?: Address; spender?: Address; data?: Hex; chainId?: number; value?: bigint; gas?: bigint } = {}) {
  return payer.signTransaction({
    to: over.to ?? asset,
    data: over.data ?? encodeFunctionData({ abi: erc20Abi, functionName: "approve", args: [over.spender ?? PERMIT2_ADDRESS, maxUint256] }),
    nonce: 0,
    gas: over.gas ?? 70_000n,
    maxFeePerGas: 2_000_000_000n,
    maxPriorityFeePerGas: 100_000_000n,
    chainId: over.chainId ?? chainId,
    value: over.value ?? 0n,
  });
}
const extension = (signedTransaction: Hex, over: Record<string, unknown> = {}) => ({
  erc20ApprovalGasSponsoring: { info: { from: payer.address, asset, spender: PERMIT2_ADDRESS, amount: maxUint256.toString(), signedTransaction, version: "1", ...over } },
});
const check = (ext: Record<string, unknown> | undefined) => sponsoredApproval(ext, payer.address, asset, chainId);

describe("sponsoredApproval (pure rules)", () => {
  it("accepts the official client's approve(Permit2, max) and reads its nonce, gas and fee", async () => {
    const checked = check(extension(await approveTx()));
    expect(checked.ok && checked.value).toMatchObject({ nonce: 0, gas: 70_000n, maxFeePerGas: 2_000_000_000n });
  });

  it("reads the route's declaration echoed by a client that added nothing as no approval", () => {
    expect(check({ erc20ApprovalGasSponsoring: { info: { description: "declared", version: "1" } } })).toEqual({ ok: true, value: undefined });
    expect(check(undefined)).toEqual({ ok: true, value: undefined });
  });

  const table: [string, () => Promise<Record<string, unknown>>, string][] = [
    ["info from another account", async () => extension(await approveTx(), { from: other }), Reason.erc20ApprovalFromMismatch],
    ["info for another token", async () => extension(await approveTx(), { asset: other }), Reason.erc20ApprovalAssetMismatch],
    ["info naming another spender", async () => extension(await approveTx(), { spender: other }), Reason.erc20ApprovalSpenderNotPermit2],
    ["info missing its version", async () => extension(await approveTx(), { version: undefined }), Reason.erc20ApprovalFormat],
    ["bytes that are no transaction", async () => extension("0x01020304"), Reason.erc20ApprovalTxParseFailed],
    ["a transaction calling another contract", async () => extension(await approveTx({ to: other })), Reason.erc20ApprovalTxWrongTarget],
    ["a transfer instead of an approve", async () => extension(await approveTx({ data: encodeFunctionData({ abi: erc20Abi, functionName: "transfer", args: [other, 1n] }) })), Reason.erc20ApprovalTxWrongSelector],
    ["an approve for another spender", async () => extension(await approveTx({ spender: other })), Reason.erc20ApprovalTxWrongSpender],
    ["a transaction for another chain", async () => extension(await approveTx({ chainId: 1 })), Reason.erc20ApprovalTxParseFailed],
    ["a transaction moving ETH", async () => extension(await approveTx({ value: 1n })), Reason.erc20ApprovalTxParseFailed],
    ["a gas limit beyond what an approve needs", async () => extension(await approveTx({ gas: 5_000_000n })), Reason.erc20ApprovalTxParseFailed],
  ];
  it.each(table)("refuses %s", async (_name, make, reason) => {
    const checked = check(await make());
    expect(checked.ok ? "accepted" : checked.rejection.reason).toBe(reason);
  });
});

describe("approvalFunding: the gas money a payer's approval gets", () => {
  const approval: SponsoredApproval = { raw: "0x", hash: "0x", nonce: 4, gas: 70_000n, maxFeePerGas: 2_000_000_000n };
  const needed = 70_000n * 2_000_000_000n;
  it.each([
    ["an account with nothing: exactly what its approval may spend", { nonce: 4, balance: 0n, fundedRecently: false }, 10n ** 15n, needed],
    ["an account holding part of it: the rest", { nonce: 4, balance: needed - 5n, fundedRecently: false }, 10n ** 15n, 5n],
    ["an account holding enough: nothing, even when funded lately", { nonce: 4, balance: needed, fundedRecently: true }, 10n ** 15n, 0n],
    ["a nonce that is not the account's next", { nonce: 5, balance: 0n, fundedRecently: false }, 10n ** 15n, Reason.erc20ApprovalTxFailed],
    ["more than the cap", { nonce: 4, balance: 0n, fundedRecently: false }, needed - 1n, Reason.erc20ApprovalFundingTooHigh],
    ["a payer funded lately", { nonce: 4, balance: 0n, fundedRecently: true }, 10n ** 15n, Reason.erc20ApprovalFundingCoolingOff],
  ] as const)("%s", (_name, state, cap, expected) => {
    const funding = approvalFunding(approval, state, cap);
    expect(funding.ok ? funding.value : funding.rejection.reason).toBe(expected);
  });
});
