import { generateKeyPairSync } from "node:crypto";
import { toHex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { generateGatewayKey, keySchemeName, keySchemeValue, KeyScheme, parseSigningKey, secp256k1Address } from "./index.ts";

const gw = generateGatewayKey();
const account = privateKeyToAccount(`0x${"11".repeat(32)}`);
const secpPem = generateKeyPairSync("ec", { namedCurve: "secp256k1" }).publicKey.export({ format: "pem", type: "spki" }).toString();
const p256Pem = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ format: "pem", type: "spki" }).toString();
const smallRsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({ format: "pem", type: "spki" }).toString();
const rsaPem = `-----BEGIN PUBLIC KEY-----\n${Buffer.from(gw.publicKey).toString("base64").match(/.{1,64}/g)!.join("\n")}\n-----END PUBLIC KEY-----\n`;

describe("parseSigningKey", () => {
  it.each([
    ["RSA PEM (the gateway's GET /signing-key)", rsaPem, "rsa-pss-sha256"],
    ["RSA DER as 0x-hex", toHex(gw.publicKey), "rsa-pss-sha256"],
    ["RSA DER as base64", Buffer.from(gw.publicKey).toString("base64"), "rsa-pss-sha256"],
    ["secp256k1 point as 0x-hex", account.publicKey, "secp256k1-eip712"],
    ["secp256k1 PEM", secpPem, "secp256k1-eip712"],
  ])("reads %s", (_name, text, scheme) => {
    const key = parseSigningKey(text);
    expect(key).toMatchObject({ ok: true, scheme });
    if (key.ok && scheme === "rsa-pss-sha256") expect(toHex(key.bytes)).toBe(toHex(gw.publicKey));
    if (key.ok && text === account.publicKey) expect(toHex(key.bytes)).toBe(account.publicKey);
  });

  it.each([
    ["a private key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----", /PUBLIC KEY/],
    ["a P-256 key", p256Pem, /neither RSA/],
    ["RSA under 2048 bits", smallRsa, /1024 bits/],
    ["a point off the curve", `0x04${"01".repeat(64)}`, /cannot be read/],
    ["garbage", "not a key!", /neither PEM/],
    ["empty", "", /neither PEM/],
  ])("refuses %s", (_name, text, error) => {
    const key = parseSigningKey(text);
    expect(key.ok).toBe(false);
    if (!key.ok) expect(key.error).toMatch(error);
  });

  it("gives the address EIP-712 recovery yields for a secp256k1 point, and maps schemes to the contract's enum", () => {
    expect(secp256k1Address(account.publicKey)).toBe(account.address);
    expect(keySchemeValue("rsa-pss-sha256")).toBe(KeyScheme.RsaPssSha256);
    expect(keySchemeName(KeyScheme.Secp256k1Eip712)).toBe("secp256k1-eip712");
    expect(keySchemeName(7)).toBeUndefined();
  });
});
