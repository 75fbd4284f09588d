import { describe, expect, it } from "vitest";
import { hashTypedData, recoverTypedDataAddress, toHex, type Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { eip3009TypedData } from "./eip3009.ts";
import { recoverDigestSigner, recoverTypedDataSigner, splitSignature } from "./signature.ts";

const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const domain = { name: "USDC", version: "2", chainId: 84532, verifyingContract: "0x036CbD53842c5426634e7929541eC2318f3dCF7e" } as const;
const typedData = (from: Hex, i: number) =>
  eip3009TypedData(domain, {
    from,
    to: "0x000000000000000000000000000000000000dEaD",
    value: BigInt(i + 1),
    validAfter: 0n,
    validBefore: 10n ** 10n,
    nonce: toHex(i, { size: 32 }),
  });

/** The malleable twin of a signature: s -> n - s, v flipped. Same signer for a lax verifier. */
function highS(signature: Hex): Hex {
  const { r, s, v } = splitSignature(signature)!;
  return `${r}${(N - BigInt(s)).toString(16).padStart(64, "0")}${(v === 27 ? 28 : 27).toString(16)}` as Hex;
}

describe("recoverTypedDataSigner (native secp256k1)", () => {
  it("recovers the same signer as viem for many keys and messages", async () => {
    for (let i = 0; i < 20; i++) {
      const account = privateKeyToAccount(generatePrivateKey());
      const data = typedData(account.address, i);
      const signature = await account.signTypedData(data);
      expect(recoverTypedDataSigner(data, signature)).toBe(account.address);
      expect(await recoverTypedDataAddress({ ...data, signature })).toBe(account.address);
    }
  });

  it("accepts v as 0/1 as well as 27/28", async () => {
    const account = privateKeyToAccount(generatePrivateKey());
    const data = typedData(account.address, 1);
    const signature = await account.signTypedData(data);
    const v01 = `${signature.slice(0, 130)}${(parseInt(signature.slice(130), 16) - 27).toString(16).padStart(2, "0")}` as Hex;
    expect(recoverTypedDataSigner(data, v01)).toBe(account.address);
  });

  it("rejects the high-s twin that a lax verifier would accept", async () => {
    const account = privateKeyToAccount(generatePrivateKey());
    const data = typedData(account.address, 2);
    const twin = highS(await account.signTypedData(data));
    expect(await recoverTypedDataAddress({ ...data, signature: twin })).toBe(account.address);
    expect(recoverTypedDataSigner(data, twin)).toBeUndefined();
  });

  it.each([
    ["64 bytes", `0x${"11".repeat(64)}`],
    ["66 bytes", `0x${"11".repeat(66)}`],
    ["v = 29", `0x${"11".repeat(64)}1d`],
    ["r = 0", `0x${"00".repeat(32)}${"11".repeat(32)}1b`],
    ["r >= n", `0x${"ff".repeat(32)}${"11".repeat(32)}1b`],
    ["not hex", `0x${"zz".repeat(65)}`],
  ])("returns undefined for a malformed signature (%s)", (_label, signature) => {
    expect(recoverDigestSigner(hashTypedData(typedData("0x000000000000000000000000000000000000dEaD", 3)), signature as Hex)).toBeUndefined();
  });
});
