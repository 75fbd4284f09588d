import { describe, expect, it } from "vitest";
import { hexToBytes } from "viem";
import { NONCE_BYTES, NonceBook, type NonceRefusal } from "./nonces.ts";

const T0 = new Date("2026-01-01T00:00:00Z");
const at = (s: number) => new Date(T0.getTime() + s * 1000);

describe("NonceBook", () => {
  it("issues 20 random bytes (the 40 hex digits nitriding accepts) that expire after the ttl", () => {
    const book = new NonceBook({ ttlMs: 60_000 });
    const { nonce, expiresAt } = book.issue(T0);
    expect(nonce).toMatch(/^0x[0-9a-f]{40}$/);
    expect(hexToBytes(nonce)).toHaveLength(NONCE_BYTES);
    expect(expiresAt).toEqual(at(60));
    expect(book.issue(T0).nonce).not.toBe(nonce);
  });

  it("accepts an issued nonce once, up to and including its expiry", () => {
    const book = new NonceBook({ ttlMs: 60_000 });
    const { nonce } = book.issue(T0);
    expect(book.redeem(hexToBytes(nonce), at(60))).toEqual({ ok: true });
  });

  const rows: { name: string; run: (book: NonceBook, nonce: Uint8Array) => ReturnType<NonceBook["redeem"]>; reason: NonceRefusal }[] = [
    { name: "no nonce", run: (b) => b.redeem(undefined, at(1)), reason: "nonce_missing" },
    { name: "an empty nonce", run: (b) => b.redeem(new Uint8Array(0), at(1)), reason: "nonce_missing" },
    { name: "a nonce never issued", run: (b) => b.redeem(new Uint8Array(NONCE_BYTES).fill(9), at(1)), reason: "nonce_unknown" },
    { name: "a nonce one second past its expiry", run: (b, n) => b.redeem(n, at(61)), reason: "nonce_expired" },
    { name: "a nonce used before", run: (b, n) => (b.redeem(n, at(1)), b.redeem(n, at(2))), reason: "nonce_reused" },
    { name: "a used nonce after it expired (still named as reuse)", run: (b, n) => (b.redeem(n, at(1)), b.redeem(n, at(90))), reason: "nonce_reused" },
    { name: "a nonce forgotten a ttl after expiry", run: (b, n) => b.redeem(n, at(121)), reason: "nonce_unknown" },
  ];

  it.each(rows)("refuses $name: $reason", ({ run, reason }) => {
    const book = new NonceBook({ ttlMs: 60_000 });
    const nonce = hexToBytes(book.issue(T0).nonce);
    expect(run(book, nonce)).toMatchObject({ ok: false, reason });
  });

  it("forgets the oldest outstanding nonce when full", () => {
    const book = new NonceBook({ ttlMs: 60_000, capacity: 2 });
    const [a, b, c] = [book.issue(T0), book.issue(T0), book.issue(T0)].map((x) => hexToBytes(x.nonce));
    expect(book.redeem(a!, at(1))).toMatchObject({ reason: "nonce_unknown" });
    expect(book.redeem(b!, at(1))).toEqual({ ok: true });
    expect(book.redeem(c!, at(1))).toEqual({ ok: true });
  });

  it("refuses a ttl that is not positive", () => {
    expect(() => new NonceBook({ ttlMs: 0 })).toThrow(/ttlMs/);
  });
});
