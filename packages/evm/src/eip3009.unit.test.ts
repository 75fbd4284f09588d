import { describe, expect, it } from "vitest";
import { Reason, type NetworkInfo, type Requirements } from "@facilitator/core";
import { privateKeyToAccount } from "viem/accounts";
import { checkEip3009Payment, checkEip3009Window, type Eip3009Authorization } from "./eip3009.ts";
import { signEip3009Payload } from "./eip3009-client.ts";

const payer = privateKeyToAccount("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d");
const stranger = privateKeyToAccount("0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a");
const asset = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
const payTo = "0x90F79bf6EB2c4f870365E785982E1f101E93b906";
const network: NetworkInfo = {
  name: "base-sepolia",
  caip2: "eip155:84532",
  family: "evm",
  chainId: 84532,
  rpcUrl: "http://127.0.0.1:1",
  asset: { address: asset, decimals: 6, name: "USDC", version: "2", transferMethod: "eip3009" },
  testnet: true,
};
const requirements: Requirements = { scheme: "exact", amount: 1000n, asset, payTo, maxTimeoutSeconds: 60, extra: { name: "USDC", version: "2" } };
const domain = { name: "USDC", version: "2", chainId: 84532, verifyingContract: asset } as const;
const good = await signEip3009Payload(payer, { domain, to: payTo, value: 1000n });

describe("checkEip3009Payment: rules without chain or clock", () => {
  it("accepts a well-formed payment and recognises the payer's ECDSA signature", () => {
    const result = checkEip3009Payment(good, requirements, network);
    expect(result.ok).toBe(true);
    if (result.ok) {
      expect(result.value.ecdsaValid).toBe(true);
      expect(result.value.authorization.from).toBe(payer.address);
      expect(result.value.asset).toBe(asset);
    }
  });

  it("marks a signature by someone else as not ECDSA-valid (only ERC-1271 could still save it)", async () => {
    const forged = { ...(await signEip3009Payload(stranger, { domain, to: payTo, value: 1000n })), authorization: { ...good.authorization } };
    const result = checkEip3009Payment(forged, requirements, network);
    expect(result.ok && result.value.ecdsaValid).toBe(false);
  });

  const auth = good.authorization;
  const cases: [string, unknown, Requirements, string][] = [
    ["payload without signature", { authorization: auth }, requirements, Reason.invalidPayload],
    ["nonce of 31 bytes", { ...good, authorization: { ...auth, nonce: `0x${"11".repeat(31)}` } }, requirements, Reason.invalidPayload],
    ["value not a decimal string", { ...good, authorization: { ...auth, value: "0x10" } }, requirements, Reason.invalidPayload],
    ["validBefore beyond uint256", { ...good, authorization: { ...auth, validBefore: (2n ** 256n).toString() } }, requirements, Reason.invalidPayload],
    ["from not an address", { ...good, authorization: { ...auth, from: "0x1234" } }, requirements, Reason.invalidPayload],
    ["extra without name", good, { ...requirements, extra: { version: "2" } }, Reason.invalidRequirements],
    ["extra without version", good, { ...requirements, extra: { name: "USDC" } }, Reason.invalidRequirements],
    ["payTo not an address", good, { ...requirements, payTo: "someone" }, Reason.invalidRequirements],
    ["domain name other than the token's", good, { ...requirements, extra: { name: "USD Coin", version: "2" } }, Reason.tokenNameMismatch],
    ["domain version other than the token's", good, { ...requirements, extra: { name: "USDC", version: "1" } }, Reason.tokenVersionMismatch],
    ["recipient other than payTo", good, { ...requirements, payTo: stranger.address }, Reason.recipientMismatch],
    ["amount lower than signed", good, { ...requirements, amount: 999n }, Reason.valueMismatch],
    ["amount higher than signed", good, { ...requirements, amount: 1001n }, Reason.valueMismatch],
  ];
  it.each(cases)("rejects %s", (_label, payload, reqs, reason) => {
    const result = checkEip3009Payment(payload, reqs, network);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.rejection.reason).toBe(reason);
      expect(result.rejection.message.length).toBeGreaterThan(10);
    }
  });

  it("compares payTo without case (checksums)", () => {
    expect(checkEip3009Payment(good, { ...requirements, payTo: payTo.toLowerCase() }, network).ok).toBe(true);
  });

  it("refuses an asset the network does not accept, whatever its domain: its code would run on our gas", () => {
    const other = "0x1111111111111111111111111111111111111111";
    const result = checkEip3009Payment(good, { ...requirements, asset: other, extra: { name: "Other", version: "9" } }, network);
    expect(!result.ok && result.rejection.reason).toBe(Reason.assetNotAllowed);
  });

  it("accepts a configured extra asset, held to its own domain", async () => {
    const extra = "0x2222222222222222222222222222222222222222";
    const withExtra: NetworkInfo = { ...network, extraAssets: [{ address: extra, decimals: 6, name: "EURC", version: "2", transferMethod: "eip3009" }] };
    const signed = await signEip3009Payload(payer, { domain: { ...domain, name: "EURC", verifyingContract: extra }, to: payTo, value: 1000n });
    const asked = { ...requirements, asset: extra, extra: { name: "EURC", version: "2" } };
    const result = checkEip3009Payment(signed, asked, withExtra);
    expect(result.ok && result.value.ecdsaValid).toBe(true);
    const wrongName = checkEip3009Payment(signed, { ...asked, extra: { name: "USDC", version: "2" } }, withExtra);
    expect(!wrongName.ok && wrongName.rejection.reason).toBe(Reason.tokenNameMismatch);
  });

  it("refuses a zero amount, which moves nothing but our gas", async () => {
    const zero = await signEip3009Payload(payer, { domain, to: payTo, value: 0n });
    const result = checkEip3009Payment(zero, { ...requirements, amount: 0n }, network);
    expect(!result.ok && result.rejection.reason).toBe(Reason.amountNotPositive);
  });
});

describe("checkEip3009Window", () => {
  const now = 1_700_000_000n;
  const a = (validAfter: bigint, validBefore: bigint): Eip3009Authorization => ({
    from: payer.address, to: payTo, value: 1n, validAfter, validBefore, nonce: `0x${"00".repeat(32)}`,
  });
  it.each([
    ["valid now, 6 s left", a(now - 1n, now + 6n), undefined],
    ["validAfter exactly now", a(now, now + 60n), undefined],
    ["only 5 s left", a(now - 1n, now + 5n), Reason.validBefore],
    ["expired", a(now - 100n, now - 1n), Reason.validBefore],
    ["not yet valid", a(now + 1n, now + 600n), Reason.validAfter],
  ])("%s", (_label, authorization, reason) => {
    expect(checkEip3009Window(authorization, now)?.reason).toBe(reason);
  });
});
