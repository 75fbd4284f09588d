import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { getAddressDecoder, getAddressEncoder, isAddress } from "@solana/kit";
import { addressBytes, addressFromBytes, isSolanaAddress } from "./base58.ts";

// @solana/kit's own codec is the reference: every address the mechanism writes or reads must be kit's.
const kitAddress = (bytes: Uint8Array) => getAddressDecoder().decode(bytes);

const key = (...head: number[]) => {
  const bytes = new Uint8Array(32).fill(7);
  bytes.set(head);
  return bytes;
};

describe("addressFromBytes", () => {
  it.each([
    ["32 zero bytes", new Uint8Array(32)],
    ["32 bytes of 255", new Uint8Array(32).fill(255)],
    ["one leading zero byte", key(0, 1)],
    ["three leading zero bytes", key(0, 0, 0, 200)],
    ["a last byte only", (() => { const b = new Uint8Array(32); b[31] = 1; return b; })()],
    ["the token program", getAddressEncoder().encode("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA" as never) as Uint8Array],
    ["the compute budget program", getAddressEncoder().encode("ComputeBudget111111111111111111111111111111" as never) as Uint8Array],
  ])("%s: the text kit writes", (_name, bytes) => {
    expect(addressFromBytes(bytes)).toBe(kitAddress(bytes));
  });

  it("writes kit's text for any 32 bytes, and reads back the same bytes", () => {
    const keys = fc.uint8Array({ minLength: 32, maxLength: 32 }).chain((b) =>
      fc.nat({ max: 32 }).map((zeros) => b.map((x, i) => (i < zeros ? 0 : x))),
    );
    fc.assert(
      fc.property(keys, (bytes) => {
        const text = addressFromBytes(bytes);
        expect(text).toBe(kitAddress(bytes));
        expect(addressBytes(text)).toEqual(bytes);
      }),
      { numRuns: 500 },
    );
  });
});

describe("addressBytes / isSolanaAddress: kit's isAddress decides", () => {
  it.each([
    ["the token program", "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA", true],
    ["the system program (32 ones: 32 zero bytes)", "11111111111111111111111111111111", true],
    ["the largest key (44 characters)", "JEKNVnkbo3jma5nREBBJCDoXFVeKkD56V3xKrvRmWxFG", true],
    ["an EVM address", "0x036CbD53842c5426634e7929541eC2318f3dCF7e", false],
    ["31 characters", "1111111111111111111111111111111", false],
    ["45 characters", "111111111111111111111111111111111111111111111", false],
    ["a zero (not in the alphabet)", "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5D0", false],
    ["an O (not in the alphabet)", "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DO", false],
    ["an I and an l (not in the alphabet)", "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5Il", false],
    ["a space", "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5D ", false],
    ["44 z: more than 32 bytes", "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", false],
    ["33 ones: 33 zero bytes", "111111111111111111111111111111111", false],
    ["empty", "", false],
  ])("%s -> %s", (_name, text, valid) => {
    expect(isAddress(text)).toBe(valid); // the table itself is kit's verdict
    expect(isSolanaAddress(text)).toBe(valid);
    expect(addressBytes(text) !== undefined).toBe(valid);
  });

  it("agrees with kit on random strings over the base58 alphabet and its look-alikes", () => {
    const chars = fc.constantFrom(..."123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0OIl+/ ".split(""));
    fc.assert(
      fc.property(fc.array(chars, { minLength: 30, maxLength: 46 }).map((a) => a.join("")), (text) => {
        expect(isSolanaAddress(text)).toBe(isAddress(text));
      }),
      { numRuns: 1000 },
    );
  });
});
