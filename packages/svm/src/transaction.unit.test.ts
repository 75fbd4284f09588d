/**
 * The hand-read wire format against @solana/kit's codecs: whatever `readPaymentTransaction` takes,
 * it must read exactly as kit does; whatever it leaves goes to kit, rejections included.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  appendTransactionMessageInstructions,
  createTransactionMessage,
  generateKeyPairSigner,
  getBase64EncodedWireTransaction,
  getUtf8Encoder,
  partiallySignTransactionMessageWithSigners,
  pipe,
  setTransactionMessageFeePayer,
  setTransactionMessageLifetimeUsingBlockhash,
  AccountRole,
  type Address,
  type Blockhash,
} from "@solana/kit";
import { getSetComputeUnitLimitInstruction, getSetComputeUnitPriceInstruction } from "@solana-program/compute-budget";
import { getTransferCheckedInstruction } from "@solana-program/token";
import { Reason } from "@facilitator/core";
import { MEMO_PROGRAM } from "./constants.ts";
import { decodePaymentTransaction, decodeWithKit, readPaymentTransaction } from "./transaction.ts";

/** Solana's compact length prefix. */
function shortU16(n: number): number[] {
  const out: number[] = [];
  for (let v = n; ; ) {
    const low = v & 0x7f;
    v >>= 7;
    if (v === 0) return [...out, low];
    out.push(low | 0x80);
  }
}

interface WireParts {
  signatures: Uint8Array[];
  version: number;
  header: [number, number, number];
  keys: Uint8Array[];
  blockhash: Uint8Array;
  instructions: { program: number; accounts: number[]; data: Uint8Array }[];
  lookups: { table: Uint8Array; writable: number[]; readonly: number[] }[];
  trailing: Uint8Array;
}

function wire(p: WireParts): Uint8Array {
  const bytes: number[] = [...shortU16(p.signatures.length), ...p.signatures.flatMap((s) => [...s])];
  if (p.version !== -1) bytes.push(p.version);
  bytes.push(...p.header, ...shortU16(p.keys.length), ...p.keys.flatMap((k) => [...k]), ...p.blockhash);
  bytes.push(...shortU16(p.instructions.length));
  for (const ix of p.instructions) bytes.push(ix.program, ...shortU16(ix.accounts.length), ...ix.accounts, ...shortU16(ix.data.length), ...ix.data);
  bytes.push(...shortU16(p.lookups.length));
  for (const l of p.lookups) bytes.push(...l.table, ...shortU16(l.writable.length), ...l.writable, ...shortU16(l.readonly.length), ...l.readonly);
  bytes.push(...p.trailing);
  return new Uint8Array(bytes);
}

const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
// Keys with and without leading zero bytes (each is one more "1" in base58).
const key = fc.tuple(bytes32, fc.nat({ max: 3 })).map(([b, zeros]) => b.map((x, i) => (i < zeros ? 0 : x)));
const signature = fc.oneof(fc.constant(new Uint8Array(64)), fc.uint8Array({ minLength: 64, maxLength: 64 }));
const index = fc.nat({ max: 7 });
const parts: fc.Arbitrary<WireParts> = fc.record({
  signatures: fc.array(signature, { maxLength: 3 }),
  // Mostly v0; also legacy (no prefix), v1 and an unknown version.
  version: fc.oneof({ weight: 6, arbitrary: fc.constant(0x80) }, fc.constantFrom(-1, 0x81, 0x85)),
  header: fc.tuple(fc.nat({ max: 3 }), fc.nat({ max: 2 }), fc.nat({ max: 2 })),
  keys: fc.array(key, { maxLength: 7 }),
  blockhash: bytes32,
  instructions: fc.array(
    fc.record({
      program: index,
      accounts: fc.array(index, { maxLength: 5 }),
      // Past 127 bytes the length prefix takes two bytes.
      data: fc.uint8Array({ maxLength: 200 }),
    }),
    { maxLength: 4 },
  ),
  lookups: fc.oneof({ weight: 5, arbitrary: fc.constant<WireParts["lookups"]>([]) }, fc.array(fc.record({ table: bytes32, writable: fc.array(index, { maxLength: 2 }), readonly: fc.array(index, { maxLength: 2 }) }), { minLength: 1, maxLength: 2 })),
  trailing: fc.oneof({ weight: 5, arbitrary: fc.constant(new Uint8Array()) }, fc.uint8Array({ minLength: 1, maxLength: 3 })),
});
// Often made consistent (signature count as the header says, indices within the keys), so that
// many inputs are readable; the rest exercise the way to kit.
const consistent = fc.tuple(parts, fc.boolean()).map(([p, fix]) => {
  if (!fix || p.signatures.length === 0 || p.keys.length === 0) return p;
  const within = (i: number) => i % p.keys.length;
  return {
    ...p,
    header: [p.signatures.length, p.header[1], p.header[2]] as [number, number, number],
    instructions: p.instructions.map((ix) => ({ ...ix, program: within(ix.program), accounts: ix.accounts.map(within) })),
  };
});
// A quarter cut short somewhere.
const cut = fc.tuple(consistent, fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, fc.nat())).map(([p, at]) => {
  const bytes = wire(p);
  return at === null ? bytes : bytes.subarray(0, at % (bytes.length + 1));
});

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");

describe("readPaymentTransaction against kit's codecs", () => {
  it("reads exactly what kit reads, or leaves the input to kit", () => {
    let read = 0;
    fc.assert(
      fc.property(cut, (bytes) => {
        const text = b64(bytes);
        const kit = decodeWithKit(text);
        const fast = readPaymentTransaction(text);
        if (fast !== undefined) {
          read++;
          expect(fast).toEqual(kit);
          expect("reason" in kit).toBe(false);
        }
        expect(decodePaymentTransaction(text)).toEqual(kit);
      }),
      { numRuns: 3000 },
    );
    expect(read).toBeGreaterThan(200); // the comparison ran on many readable transactions
  });

  it("gives kit's answer for any string, base64 or not", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.base64String(), fc.base64String().map((s) => ` ${s}`), fc.base64String().map((s) => s.replace(/^(.)/, "$1="))), (text) => {
        expect(decodePaymentTransaction(text)).toEqual(decodeWithKit(text));
      }),
      { numRuns: 1000 },
    );
  });

  it.each([
    ["empty", ""],
    ["not base64", "not base64!"],
    ["an '=' inside", "AQ=A"],
    ["a message-first (v1) envelope", b64(new Uint8Array([0x81, 1, 2, 3]))],
  ])("leaves %s to kit", (_name, text) => {
    expect(readPaymentTransaction(text)).toBeUndefined();
    expect(decodePaymentTransaction(text)).toMatchObject({ reason: Reason.invalidPayload });
  });
});

describe("readPaymentTransaction on transactions x402 clients build", () => {
  async function paymentWire(memo?: string): Promise<string> {
    const [payer, feePayer, source, mint, destination] = await Promise.all(Array.from({ length: 5 }, () => generateKeyPairSigner()));
    const instructions = [
      getSetComputeUnitLimitInstruction({ units: 20_000 }),
      getSetComputeUnitPriceInstruction({ microLamports: 1n }),
      getTransferCheckedInstruction({ source: source.address, mint: mint.address, destination: destination.address, authority: payer, amount: 1000n, decimals: 6 }),
      ...(memo === undefined ? [] : [{ programAddress: MEMO_PROGRAM, accounts: [{ address: payer.address, role: AccountRole.READONLY_SIGNER }], data: new Uint8Array(getUtf8Encoder().encode(memo)) }]),
    ];
    const message = pipe(
      createTransactionMessage({ version: 0 }),
      (m) => setTransactionMessageFeePayer(feePayer.address as Address, m),
      (m) => setTransactionMessageLifetimeUsingBlockhash({ blockhash: "EtWTRABZaYq6iMfeYKouRu166VU2xqa1EtWTRABZaYq6" as Blockhash, lastValidBlockHeight: 100n }, m),
      (m) => appendTransactionMessageInstructions(instructions, m),
    );
    return getBase64EncodedWireTransaction(await partiallySignTransactionMessageWithSigners(message));
  }

  it.each([
    ["a transfer", undefined],
    ["a transfer with a short memo", "order 42"],
    ["a transfer with a 300-byte memo (two-byte length prefix)", "m".repeat(300)],
  ])("%s: read by hand, as kit reads it", async (_name, memo) => {
    const text = await paymentWire(memo);
    const fast = readPaymentTransaction(text);
    expect(fast).toBeDefined();
    expect(fast).toEqual(decodeWithKit(text));
    expect(fast!.signatures[fast!.feePayer]).toBeNull(); // the fee payer signs later
  });
});
