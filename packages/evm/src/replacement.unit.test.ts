/** Replacing a pending transaction: the fee rule, and a replacement signed from a recorded one (no chain needed). */
import { describe, expect, it } from "vitest";
import { encodeFunctionData, parseAbi, parseTransaction, type PublicClient } from "viem";
import { devKey } from "@facilitator/devnet";
import type { FeeOracle, FeeQuote } from "./fees.ts";
import { feeQuoteOf, txFeesOf, type RecordedTx, type TxFees } from "./recorded-tx.ts";
import { replacementDueAt, replacementFees, ReplacementCallError, signReplacement } from "./replacement.ts";
import { EvmSigner } from "./signer-pool.ts";

const eip1559 = (maxFeePerGas: number, maxPriorityFeePerGas: number): TxFees => ({ maxFeePerGas: String(maxFeePerGas), maxPriorityFeePerGas: String(maxPriorityFeePerGas) });
const legacy = (gasPrice: number): TxFees => ({ gasPrice: String(gasPrice) });

describe("replacementFees", () => {
  it.each<[string, TxFees, TxFees, TxFees | undefined]>([
    ["pays what the chain asks: wait", eip1559(100, 2), eip1559(100, 2), undefined],
    ["pays more than the chain asks: wait", eip1559(100, 2), eip1559(60, 1), undefined],
    ["base fee rose far: today's fees", eip1559(100, 2), eip1559(1000, 2), eip1559(1000, 3)],
    ["base fee rose a little: 12.5% over the old fees", eip1559(100, 8), eip1559(101, 8), eip1559(113, 9)],
    ["only the tip rose: both fields still rise", eip1559(100, 2), eip1559(100, 5), eip1559(113, 5)],
    ["a zero tip stays zero when nobody tips", eip1559(100, 0), eip1559(200, 0), eip1559(200, 0)],
    ["the cap never falls below the tip", eip1559(10, 10), eip1559(10, 40), eip1559(40, 40)],
    ["legacy, price rose: today's price", legacy(100), legacy(300), legacy(300)],
    ["legacy, price rose a little: 12.5% over", legacy(100), legacy(105), legacy(113)],
    ["legacy, price unchanged: wait", legacy(100), legacy(100), undefined],
    ["the fee market changed under it: leave it", legacy(100), eip1559(1000, 2), undefined],
  ])("%s", (_, stuck, now, expected) => {
    expect(replacementFees(stuck, now)).toEqual(expected);
  });

  it("every replacement clears a 10% bump on each field", () => {
    for (const [cap, tip] of [[1n, 1n], [7n, 3n], [1_000_000_007n, 999n], [2n ** 70n, 2n ** 40n]]) {
      const stuck = { maxFeePerGas: String(cap), maxPriorityFeePerGas: String(tip) };
      const next = replacementFees(stuck, { ...stuck, maxFeePerGas: String(cap! + 1n) }) as { maxFeePerGas: string; maxPriorityFeePerGas: string };
      expect(BigInt(next.maxFeePerGas) * 10n).toBeGreaterThanOrEqual(cap! * 11n);
      expect(BigInt(next.maxPriorityFeePerGas) * 10n).toBeGreaterThanOrEqual(tip! * 11n);
    }
  });
});

describe("recorded fees", () => {
  it.each<FeeQuote>([
    { type: "eip1559", maxFeePerGas: 2n ** 70n, maxPriorityFeePerGas: 3n },
    { type: "legacy", gasPrice: 1_000_000_007n },
  ])("a %o quote survives the round trip through its stored form", (quote) => {
    expect(feeQuoteOf(JSON.parse(JSON.stringify(txFeesOf(quote))))).toEqual(quote);
  });
});

describe("signReplacement", () => {
  const abi = parseAbi(["function settle(bytes32 inputHash, bytes32 outputHash)"]);
  const to = "0x00000000000000000000000000000000000000aa";
  const data = encodeFunctionData({ abi, functionName: "settle", args: [`0x${"11".repeat(32)}`, `0x${"22".repeat(32)}`] });
  const quoting = (quote: FeeQuote) => ({ quote: async () => quote }) as FeeOracle;
  const signer = new EvmSigner(devKey(24), { client: {} as PublicClient, chainId: 84532, fees: quoting({ type: "legacy", gasPrice: 0n }) });

  async function recorded(fees: FeeQuote, nonce = 7): Promise<RecordedTx> {
    const tx = await signer.sign({ to, data, gas: 50_000n }, fees, nonce);
    return { ...tx, from: signer.address, gas: "50000", fees: txFeesOf(fees), signedAt: 1_000 };
  }

  it("signs the same call at the same nonce with raised fees, listing every hash it replaced", async () => {
    const stuck = await recorded({ type: "eip1559", maxFeePerGas: 100n, maxPriorityFeePerGas: 2n });
    const first = (await signReplacement(signer, stuck, { to, data }, quoting({ type: "eip1559", maxFeePerGas: 1000n, maxPriorityFeePerGas: 2n })))!;
    expect(first).toMatchObject({ nonce: 7, from: signer.address, gas: "50000", fees: eip1559(1000, 3), replaced: [stuck.hash] });
    expect(parseTransaction(first.raw)).toMatchObject({ nonce: 7, to, data, gas: 50_000n, maxFeePerGas: 1000n, maxPriorityFeePerGas: 3n });
    const second = (await signReplacement(signer, first, { to, data }, quoting({ type: "eip1559", maxFeePerGas: 5000n, maxPriorityFeePerGas: 3n })))!;
    expect(second.replaced).toEqual([stuck.hash, first.hash]);
  });

  it("leaves a transaction that pays what the chain asks", async () => {
    const stuck = await recorded({ type: "legacy", gasPrice: 100n });
    expect(await signReplacement(signer, stuck, { to, data }, quoting({ type: "legacy", gasPrice: 100n }))).toBeUndefined();
  });

  it("never puts another call at the nonce", async () => {
    const stuck = await recorded({ type: "legacy", gasPrice: 100n });
    const rises = quoting({ type: "legacy", gasPrice: 1000n });
    await expect(signReplacement(signer, stuck, { to, data: `${data}00` }, rises)).rejects.toBeInstanceOf(ReplacementCallError);
    await expect(signReplacement(signer, stuck, { to: "0x00000000000000000000000000000000000000bb", data }, rises)).rejects.toBeInstanceOf(ReplacementCallError);
  });

  it("is due `afterMs` after signing, and never for a record without its fees (written before replacement existed)", async () => {
    const stuck = await recorded({ type: "legacy", gasPrice: 100n });
    expect(replacementDueAt(stuck, 60_000)).toBe(61_000);
    const { gas: _g, fees: _f, signedAt: _s, ...old } = stuck;
    expect(replacementDueAt(old, 60_000)).toBe(Infinity);
  });
});
