import { describe, expect, it } from "vitest";
import { hexToBytes } from "viem";
import { MemoryNonceStore, NONCE_BYTES, NonceBook, nonceVerdict, redeemable, type NonceRecord, type NonceRefusal, type NonceVerdict } from "./nonces.ts";

const T0 = new Date("2026-01-01T00:00:00Z");
const at = (s: number) => new Date(T0.getTime() + s * 1000);

describe("NonceBook", () => {
  it("issues 20 random bytes (the 40 hex digits nitriding accepts) that expire after the ttl", async () => {
    const book = new NonceBook({ ttlMs: 60_000 });
    const { nonce, expiresAt } = await book.issue(T0);
    expect(nonce).toMatch(/^0x[0-9a-f]{40}$/);
    expect(hexToBytes(nonce)).toHaveLength(NONCE_BYTES);
    expect(expiresAt).toEqual(at(60));
    expect((await book.issue(T0)).nonce).not.toBe(nonce);
  });

  it("accepts an issued nonce once, up to and including its expiry", async () => {
    const book = new NonceBook({ ttlMs: 60_000 });
    const { nonce } = await book.issue(T0);
    expect(await book.redeem(hexToBytes(nonce), at(60))).toEqual({ ok: true });
  });

  const rows: { name: string; run: (book: NonceBook, nonce: Uint8Array) => Promise<NonceVerdict>; reason: NonceRefusal }[] = [
    { name: "no nonce", run: (b) => b.redeem(undefined, at(1)), reason: "nonce_missing" },
    { name: "an empty nonce", run: (b) => b.redeem(new Uint8Array(0), at(1)), reason: "nonce_missing" },
    { name: "a nonce never issued", run: (b) => b.redeem(new Uint8Array(NONCE_BYTES).fill(9), at(1)), reason: "nonce_unknown" },
    { name: "a nonce one second past its expiry", run: (b, n) => b.redeem(n, at(61)), reason: "nonce_expired" },
    { name: "a nonce used before", run: async (b, n) => (await b.redeem(n, at(1)), b.redeem(n, at(2))), reason: "nonce_reused" },
    { name: "a used nonce after it expired (still named as reuse)", run: async (b, n) => (await b.redeem(n, at(1)), b.redeem(n, at(90))), reason: "nonce_reused" },
    { name: "a nonce forgotten a ttl after expiry", run: (b, n) => b.redeem(n, at(121)), reason: "nonce_unknown" },
  ];

  it.each(rows)("refuses $name: $reason", async ({ run, reason }) => {
    const book = new NonceBook({ ttlMs: 60_000 });
    const nonce = hexToBytes((await book.issue(T0)).nonce);
    expect(await run(book, nonce)).toMatchObject({ ok: false, reason });
  });

  it("of two concurrent redemptions of one nonce, exactly one succeeds", async () => {
    const book = new NonceBook({ ttlMs: 60_000 });
    const nonce = hexToBytes((await book.issue(T0)).nonce);
    const verdicts = await Promise.all([book.redeem(nonce, at(1)), book.redeem(nonce, at(1))]);
    expect(verdicts.filter((v) => v.ok)).toHaveLength(1);
  });

  it("forgets the oldest outstanding nonce when its memory store is full", async () => {
    const book = new NonceBook({ ttlMs: 60_000, store: new MemoryNonceStore(2) });
    const [a, b, c] = (await Promise.all([book.issue(T0), book.issue(T0), book.issue(T0)])).map((x) => hexToBytes(x.nonce));
    expect(await book.redeem(a!, at(1))).toMatchObject({ reason: "nonce_unknown" });
    expect(await book.redeem(b!, at(1))).toEqual({ ok: true });
    expect(await book.redeem(c!, at(1))).toEqual({ ok: true });
  });

  it("refuses a ttl that is not positive", () => {
    expect(() => new NonceBook({ ttlMs: 0 })).toThrow(/ttlMs/);
  });
});

describe("the nonce rule every store applies", () => {
  const fresh: NonceRecord = { expiresAt: 1_000, used: false };
  it.each<[string, NonceRecord | undefined, number, boolean, string | undefined]>([
    ["fresh, before expiry", fresh, 999, true, undefined],
    ["fresh, at expiry", fresh, 1_000, true, undefined],
    ["fresh, after expiry", fresh, 1_001, false, "nonce_expired"],
    ["used", { ...fresh, used: true }, 10, false, "nonce_reused"],
    ["unknown", undefined, 10, false, "nonce_unknown"],
  ])("%s", (_name, record, now, ok, reason) => {
    expect(redeemable(record, now)).toBe(ok);
    expect(nonceVerdict("0x01", record, now)).toMatchObject(ok ? { ok: true } : { ok: false, reason });
  });
});
