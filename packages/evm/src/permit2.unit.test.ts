import { describe, expect, it } from "vitest";
import { Reason, type NetworkInfo, type PaymentRequest, type Requirements } from "@facilitator/core";
import fc from "fast-check";
import { getAddress, hashTypedData, toHex, type Address } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import {
  checkPermit2Payment,
  checkPermit2Time,
  EXACT_PERMIT2_PROXY,
  permit2Digest,
  permit2LedgerKey,
  PERMIT2_ADDRESS,
  PERMIT2_WITNESS_TYPES,
  planPermit2Settlement,
  UPTO_PERMIT2_PROXY,
  type Permit2ChainState,
  type Permit2Kind,
  type Permit2Payment,
} from "./permit2.ts";
import { permit2SettleCall } from "./permit2-handler.ts";

const payer = privateKeyToAccount("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d");
const facilitator: Address = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const asset: Address = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
const payTo: Address = "0x90F79bf6EB2c4f870365E785982E1f101E93b906";
const other: Address = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65";
const network: NetworkInfo = {
  name: "base-sepolia", caip2: "eip155:84532", family: "evm", chainId: 84532, rpcUrl: "http://127.0.0.1:1",
  asset: { address: asset, decimals: 6, name: "USDC", version: "2", transferMethod: "eip3009" }, testnet: true,
};

/** A Permit2 payload as the official client signs it. */
async function signed(kind: Permit2Kind, over: { amount?: bigint; to?: Address; facilitator?: Address; spender?: Address; token?: Address } = {}) {
  const authorization = {
    from: payer.address,
    permitted: { token: over.token ?? asset, amount: (over.amount ?? 1000n).toString() },
    spender: over.spender ?? (kind === "exact" ? EXACT_PERMIT2_PROXY : UPTO_PERMIT2_PROXY),
    nonce: "77",
    deadline: "2000000000",
    witness: { to: over.to ?? payTo, validAfter: "100", ...(kind === "upto" ? { facilitator: over.facilitator ?? facilitator } : {}) },
  };
  const w = authorization.witness;
  const signature = await payer.signTypedData({
    domain: { name: "Permit2", chainId: 84532, verifyingContract: PERMIT2_ADDRESS },
    types: PERMIT2_WITNESS_TYPES[kind],
    primaryType: "PermitWitnessTransferFrom",
    message: {
      permitted: { token: authorization.permitted.token, amount: BigInt(authorization.permitted.amount) },
      spender: authorization.spender,
      nonce: 77n,
      deadline: 2_000_000_000n,
      witness: kind === "exact" ? { to: w.to, validAfter: 100n } : { to: w.to, facilitator: w.facilitator!, validAfter: 100n },
    },
  } as never);
  return { signature, permit2Authorization: authorization };
}

const request = (kind: Permit2Kind, payload: unknown, over: Partial<Requirements> = {}, extensions?: Record<string, unknown>): PaymentRequest => ({
  x402Version: 2, scheme: kind, network, networkId: network.caip2, payload: payload as Record<string, unknown>,
  requirements: { scheme: kind, amount: 1000n, asset, payTo, maxTimeoutSeconds: 60, extra: { assetTransferMethod: "permit2" }, ...over },
  ...(extensions ? { extensions } : {}),
});
const sponsoring = (over: Record<string, unknown> = {}) => ({
  eip2612GasSponsoring: {
    info: { from: payer.address, asset, spender: PERMIT2_ADDRESS, amount: "1000", nonce: "0", deadline: "2000000000", signature: `0x${"11".repeat(64)}1b`, version: "1", ...over },
  },
});

const exact = await signed("exact");
const upto = await signed("upto");

describe("checkPermit2Payment (pure rules)", () => {
  it("accepts the official client's exact payload and recovers the payer", () => {
    const checked = checkPermit2Payment(request("exact", exact), "exact", [facilitator]);
    expect(checked.ok && checked.value).toMatchObject({ owner: payer.address, permitted: 1000n, charge: 1000n, nonce: 77n, ecdsaValid: true, proxy: EXACT_PERMIT2_PROXY });
  });

  it("upto: the charge is the settle request's amount, at most the signed maximum; the witness names the settler", () => {
    const checked = checkPermit2Payment(request("upto", upto, { amount: 400n }), "upto", [facilitator]);
    expect(checked.ok && checked.value).toMatchObject({ permitted: 1000n, charge: 400n, facilitator, ecdsaValid: true });
    const zero = checkPermit2Payment(request("upto", upto, { amount: 0n }), "upto", [facilitator]);
    expect(zero.ok && zero.value.charge).toBe(0n);
  });

  const refusals: [string, Permit2Kind, Promise<unknown> | unknown, Partial<Requirements>, Record<string, unknown> | undefined, string][] = [
    ["no permit2Authorization", "exact", { signature: exact.signature }, {}, undefined, Reason.invalidPayload],
    ["an amount beyond uint256", "exact", { ...exact, permit2Authorization: { ...exact.permit2Authorization, nonce: (2n ** 256n).toString() } }, {}, undefined, Reason.invalidPayload],
    ["requirements naming another transfer method", "exact", exact, { extra: { assetTransferMethod: "eip3009" } }, undefined, Reason.invalidRequirements],
    ["an asset nobody configured", "exact", signed("exact", { token: other }), { asset: other }, undefined, Reason.assetNotAllowed],
    ["a spender that is not the exact proxy", "exact", signed("exact", { spender: UPTO_PERMIT2_PROXY }), {}, undefined, Reason.permit2InvalidSpender],
    ["a witness paying someone else", "exact", exact, { payTo: other }, undefined, Reason.permit2RecipientMismatch],
    ["an asset spelled in lower case (EVM addresses compare without case)", "exact", exact, { asset: asset.toLowerCase() as Address }, undefined, "ok"],
    ["a permit for another token than the requirements'", "exact", signed("exact", { token: other }), {}, undefined, Reason.permit2TokenMismatch],
    ["exact: an amount other than the one required", "exact", exact, { amount: 999n }, undefined, Reason.permit2AmountMismatch],
    ["upto: a charge above the signed maximum", "upto", upto, { amount: 1001n }, undefined, Reason.uptoSettlementExceedsAmount],
    ["upto: a witness naming another facilitator", "upto", signed("upto", { facilitator: other }), {}, undefined, Reason.uptoFacilitatorMismatch],
    ["a sponsored permit from another owner", "exact", exact, {}, sponsoring({ from: other }), Reason.eip2612FromMismatch],
    ["a sponsored permit for another spender", "exact", exact, {}, sponsoring({ spender: other }), Reason.eip2612SpenderNotPermit2],
    ["a sponsored permit for another token", "exact", exact, {}, sponsoring({ asset: other }), Reason.eip2612AssetMismatch],
    ["a sponsored permit for another amount", "exact", exact, {}, sponsoring({ amount: "999" }), Reason.permit2612AmountMismatch],
    ["a sponsored permit of the wrong shape", "exact", exact, {}, sponsoring({ signature: "0x1234" }), Reason.eip2612ExtensionFormat],
  ];
  it.each(refusals)("%s", async (_name, kind, payload, over, extensions, reason) => {
    const checked = checkPermit2Payment(request(kind, await payload, over, extensions), kind, [facilitator]);
    if (reason === "ok") return expect(checked.ok).toBe(true);
    expect(checked.ok ? "accepted" : checked.rejection.reason).toBe(reason);
  });

  it("a signature by someone else is not the payer's ECDSA signature (only ERC-1271 could save it)", () => {
    const forged = { ...exact, permit2Authorization: { ...exact.permit2Authorization, from: other } };
    const checked = checkPermit2Payment(request("exact", forged), "exact", [facilitator]);
    expect(checked.ok && checked.value.ecdsaValid).toBe(false);
  });
});

describe("time, ledger key and calls", () => {
  const payment = (() => {
    const c = checkPermit2Payment(request("exact", exact, {}, sponsoring({ deadline: "1500" })), "exact", [facilitator]);
    if (!c.ok) throw new Error(c.rejection.message);
    return c.value;
  })();

  it.each([
    [99n, Reason.permit2NotYetValid],
    [100n, undefined],
    [1494n, undefined],
    [1495n, Reason.eip2612DeadlineExpired],
    [1_999_999_995n, Reason.permit2DeadlineExpired],
  ])("at %s: %s", (now, reason) => {
    expect(checkPermit2Time(payment, now, 6n)?.reason).toBe(reason);
  });

  it("one ledger key per owner and Permit2 nonce, whatever the token or proxy", () => {
    expect(permit2LedgerKey(84532, payer.address, 77n)).toBe(`evm:84532:permit2:${payer.address.toLowerCase()}:77`);
  });

  it("settles through settleWithPermit only when the client added the EIP-2612 permit", () => {
    const plain = checkPermit2Payment(request("exact", exact), "exact", [facilitator]);
    expect(plain.ok && permit2SettleCall(plain.value).data.slice(0, 10)).not.toBe(permit2SettleCall(payment).data.slice(0, 10));
    expect(permit2SettleCall(payment).to).toBe(EXACT_PERMIT2_PROXY);
  });
});

describe("planPermit2Settlement", () => {
  const p = (over: Partial<Permit2Payment> = {}): Permit2Payment => {
    const c = checkPermit2Payment(request("exact", exact), "exact", [facilitator]);
    if (!c.ok) throw new Error(c.rejection.message);
    return { ...c.value, ...over };
  };
  const state = (over: Partial<Permit2ChainState> = {}): Permit2ChainState => ({
    assetHasCode: true, ownerHasCode: false, proxyHasCode: true, balance: 5000n, allowance: 5000n, nonceWord: 0n, settle: { ok: true, gas: 90_000n }, ...over,
  });
  const table: [string, Partial<Permit2Payment>, Partial<Permit2ChainState>, string | undefined][] = [
    ["everything in place", {}, {}, undefined],
    ["no token code", {}, { assetHasCode: false }, Reason.assetNotDeployed],
    ["no proxy code", {}, { proxyHasCode: false }, Reason.permit2ProxyNotDeployed],
    ["a signature that is not the payer's, by an account without code", { ecdsaValid: false }, {}, Reason.permit2InvalidSignature],
    ["the nonce's bit set in Permit2's bitmap", {}, { nonceWord: 1n << 77n }, Reason.permit2InvalidNonce],
    ["another nonce's bit set", {}, { nonceWord: 1n << 76n }, undefined],
    ["too little balance", {}, { balance: 999n }, Reason.permit2InsufficientBalance],
    ["no allowance and no extension", {}, { allowance: 0n }, Reason.permit2AllowanceRequired],
    ["no allowance, with an EIP-2612 permit", { sponsoredPermit: { value: 1000n, deadline: 2n ** 40n, signature: { r: "0x01", s: "0x02", v: 27 } } }, { allowance: 0n }, undefined],
    ["a simulation that reverts", {}, { settle: { ok: false, reason: "InvalidSigner()" } }, Reason.permit2SimulationFailed],
  ];
  it.each(table)("%s", (_name, payment, chain, reason) => {
    const plan = planPermit2Settlement(p(payment), state(chain));
    expect(plan.ok ? undefined : plan.rejection.reason).toBe(reason);
    if (plan.ok) expect(plan.value.gas).toBe(90_000n);
  });
});


describe("permit2Digest", () => {
  const address = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => getAddress(toHex(b)));
  const uint256 = fc.bigInt({ min: 0n, max: 2n ** 256n - 1n });
  it("equals viem's hashTypedData over the proxies' witness types, for any values and both kinds", () => {
    fc.assert(
      fc.property(fc.constantFrom<Permit2Kind>("exact", "upto"), fc.integer({ min: 1, max: 2 ** 40 }), address, uint256, address, uint256, uint256, address, uint256, address, (kind, chainId, token, amount, spender, nonce, deadline, to, validAfter, facilitator) => {
          const witness = kind === "exact" ? { to, validAfter } : { to, facilitator, validAfter };
          const expected = hashTypedData({
            domain: { name: "Permit2", chainId, verifyingContract: PERMIT2_ADDRESS },
            types: PERMIT2_WITNESS_TYPES[kind],
            primaryType: "PermitWitnessTransferFrom",
            message: { permitted: { token, amount }, spender, nonce, deadline, witness },
          } as never);
          expect(permit2Digest(chainId, kind, { token, amount, spender, nonce, deadline, to, validAfter, facilitator })).toBe(expected);
        },
      ),
      { numRuns: 200 },
    );
  });
});
