import { describe, expect, it } from "vitest";
import { Reason, type NetworkInfo, type Requirements } from "@facilitator/core";
import { toFunctionSelector, type Address } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { checkPermitDeadline, checkPermitPayment, permitLedgerKey, planPermitSettlement, ALLOWANCE_GAS, type PermitChainState, type PermitPayment } from "./permit.ts";
import { permitCall, transferFromCall } from "./permit-handler.ts";
import { signPermitPayload } from "./permit-client.ts";

const payer = privateKeyToAccount("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d");
const spender: Address = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const asset: Address = "0xFAfDdbb3FC7688494971a79cc65DCa3EF82079E7";
const payTo: Address = "0x90F79bf6EB2c4f870365E785982E1f101E93b906";
const network: NetworkInfo = {
  name: "megaeth", caip2: "eip155:4326", family: "evm", chainId: 4326, rpcUrl: "http://127.0.0.1:1",
  asset: { address: asset, decimals: 18, name: "MegaUSD", version: "1", transferMethod: "permit" }, testnet: false,
};
const domain = { name: "MegaUSD", version: "1", chainId: 4326, verifyingContract: asset } as const;
const requirements = (over: Partial<Requirements> = {}): Requirements => ({
  scheme: "exact", amount: 500n, asset, payTo, maxTimeoutSeconds: 60,
  extra: { name: "MegaUSD", version: "1", assetTransferMethod: "erc2612-permit", spender }, ...over,
});
const payload = await signPermitPayload(payer, { domain, spender, value: 500n, nonce: 3n, deadline: 2_000_000_000n });
const check = (p: unknown = payload, r = requirements()) => checkPermitPayment(p, r, network, [spender]);

describe("checkPermitPayment (pure rules)", () => {
  it("accepts a valid permit and recovers the owner", () => {
    const checked = check();
    expect(checked.ok).toBe(true);
    if (checked.ok) expect(checked.value).toMatchObject({ asset, payTo, ecdsaValid: true, permit: { owner: payer.address, spender, value: 500n, nonce: 3n } });
  });

  const table: [string, unknown, Requirements, string][] = [
    ["no permit object", { signature: payload.signature }, requirements(), Reason.invalidPayload],
    ["a non-numeric value", { ...payload, permit: { ...payload.permit, value: "5e2" } }, requirements(), Reason.invalidPayload],
    ["a value beyond uint256", { ...payload, permit: { ...payload.permit, deadline: (2n ** 256n).toString() } }, requirements(), Reason.invalidPayload],
    ["another transfer method", payload, requirements({ extra: { name: "MegaUSD", version: "1", assetTransferMethod: "permit2" } }), Reason.invalidRequirements],
    ["no domain in extra", payload, requirements({ extra: {} }), Reason.invalidRequirements],
    ["another domain name", payload, requirements({ extra: { name: "USDm", version: "1" } }), Reason.tokenNameMismatch],
    ["a spender that is not ours", { ...payload, permit: { ...payload.permit, spender: payTo } }, requirements(), Reason.permitSpenderMismatch],
    ["a lower value than required", payload, requirements({ amount: 501n }), Reason.valueMismatch],
    ["a higher value than required", payload, requirements({ amount: 499n }), Reason.valueMismatch],
  ];
  it.each(table)("rejects %s", (_name, p, r, reason) => {
    const checked = check(p, r);
    expect(checked.ok).toBe(false);
    if (!checked.ok) expect(checked.rejection.reason).toBe(reason);
  });

  it("accepts requirements without assetTransferMethod (v1 resource servers do not set it)", () => {
    expect(check(payload, requirements({ extra: { name: "MegaUSD", version: "1" } })).ok).toBe(true);
  });

  it("marks a signature that is not the owner's as not ECDSA-valid (left to ERC-1271 and the chain)", () => {
    const tampered = { ...payload, permit: { ...payload.permit, nonce: "4" } };
    const checked = check(tampered);
    expect(checked.ok && checked.value.ecdsaValid).toBe(false);
  });
});

describe("checkPermitDeadline", () => {
  const permit = { owner: payer.address, spender, value: 1n, nonce: 0n, deadline: 1000n };
  it.each([
    [993n, undefined],
    [994n, undefined],
    [995n, Reason.permitDeadline],
    [1001n, Reason.permitDeadline],
  ])("at now = %s", (now, reason) => expect(checkPermitDeadline(permit, now)?.reason).toBe(reason));
});

describe("planPermitSettlement", () => {
  const checked = check();
  if (!checked.ok) throw new Error("fixture must parse");
  const p: PermitPayment = checked.value;
  const ok = (gas: bigint) => ({ ok: true as const, gas });
  const reverted = { ok: false as const, reason: "ERC20InsufficientAllowance" };
  const state = (over: Partial<PermitChainState> = {}): PermitChainState => ({
    assetHasCode: true, ownerHasCode: false, balance: 1000n, nonce: 3n, allowance: 0n,
    permit: ok(80_000n), transferFrom: reverted, transfer: ok(50_000n), ...over,
  });
  const reasonOf = (s: PermitChainState, payment = p, permitRecorded = false) => {
    const plan = planPermitSettlement(payment, s, 4326, { permitRecorded });
    return plan.ok ? plan.value : plan.rejection.reason;
  };
  const consumed = { allowance: 500n, nonce: 4n, permit: reverted, transferFrom: ok(40_000n) };

  it("plans the permit, then a transfer costed as the owner's transfer plus the allowance update", () => {
    expect(reasonOf(state())).toEqual({ permitNeeded: true, permitGas: 80_000n, transferGas: 50_000n + ALLOWANCE_GAS });
  });
  it("sends the permit even when an allowance is already in place: the token checks the signature", () => {
    expect(reasonOf(state({ allowance: 10n ** 30n, transferFrom: ok(40_000n) }))).toEqual({ permitNeeded: true, permitGas: 80_000n, transferGas: 50_000n + ALLOWANCE_GAS });
  });
  it("skips the permit only when this payment recorded it and the chain shows its nonce consumed", () => {
    expect(reasonOf(state(consumed), p, true)).toEqual({ permitNeeded: false, permitGas: 0n, transferGas: 40_000n });
  });
  it.each([
    ["asset without code", state({ assetHasCode: false }), Reason.assetNotDeployed],
    ["bad ECDSA from an account without code", state(), Reason.signature, { ...p, ecdsaValid: false }],
    ["a contract wallet whose signature the token refuses", state({ ownerHasCode: true, permit: reverted }), Reason.signature, { ...p, ecdsaValid: false }],
    ["balance below the value", state({ balance: 499n }), Reason.insufficientFunds],
    ["a used nonce and no allowance", state({ nonce: 4n }), Reason.permitNonce],
    ["a used nonce this payment never recorded, allowance in place (someone else's permit, or a garbage signature)", state(consumed), Reason.permitNonce],
    ["a garbage signature of a contract wallet with an allowance in place", state({ ...consumed, nonce: 3n, ownerHasCode: true }), Reason.signature, { ...p, ecdsaValid: false }],
    ["a future nonce", state({ nonce: 2n }), Reason.permitNonce],
    ["an allowance below the value and a used nonce", state({ allowance: 499n, nonce: 4n }), Reason.permitNonce],
    ["a recorded permit whose allowance was spent since", state({ ...consumed, allowance: 499n }), Reason.permitNonce, p, true],
    ["a permit that reverts", state({ permit: reverted }), Reason.evmSimulationFailed],
    ["a transfer that reverts", state({ transfer: reverted }), Reason.evmSimulationFailed],
    ["a recorded permit whose allowance is in place but transferFrom reverts", state({ ...consumed, transferFrom: reverted }), Reason.evmSimulationFailed, p, true],
  ] as [string, PermitChainState, string, PermitPayment?, boolean?][])("rejects %s", (_name, s, reason, payment, recorded) => {
    expect(reasonOf(s, payment ?? p, recorded)).toBe(reason);
  });
});

describe("permit calls and ledger key", () => {
  const checked = check();
  if (!checked.ok) throw new Error("fixture must parse");
  it("uses the (v, r, s) overload for 65-byte signatures and the bytes overload otherwise", () => {
    expect(permitCall(checked.value).data.slice(0, 10)).toBe(toFunctionSelector("permit(address,address,uint256,uint256,uint8,bytes32,bytes32)"));
    expect(permitCall({ ...checked.value, signature: `0x${"11".repeat(100)}` }).data.slice(0, 10)).toBe(toFunctionSelector("permit(address,address,uint256,uint256,bytes)"));
    expect(transferFromCall(checked.value).data.slice(0, 10)).toBe(toFunctionSelector("transferFrom(address,address,uint256)"));
  });
  it("keys the ledger by chain, token, owner and permit nonce, lower case", () => {
    expect(permitLedgerKey(4326, asset, payer.address, 3n)).toBe(`evm:4326:${asset.toLowerCase()}:${payer.address.toLowerCase()}:permit:3`);
  });
});
