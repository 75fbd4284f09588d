/**
 * Replacing a transaction that a fee rise left pending: same nonce, same call, higher fees. Only one
 * transaction per nonce can be mined, so a replacement never has a second effect; it lists the hashes
 * it replaced, so a receipt of any of them is found.
 */
import { isAddressEqual, parseTransaction, type Address, type Hex } from "viem";
import type { FeeOracle } from "./fees.ts";
import { feeQuoteOf, txFeesOf, type RecordedTx, type TxFees } from "./recorded-tx.ts";
import type { EvmSigner } from "./signer-pool.ts";

/** Most pools take a replacement only at 10% over the old fees or more; 12.5% leaves room for rounding. */
const bumped = (wei: bigint) => wei + (wei + 7n) / 8n;
const maxOf = (a: bigint, b: bigint) => (a > b ? a : b);

/**
 * Fees for replacing a pending transaction, or undefined when it pays what the chain asks `now` and
 * waiting (and re-sending the same bytes) is the right move. A replacement pays the larger of
 * today's fees and the stuck ones raised by 12.5%, on every field.
 */
export function replacementFees(stuck: TxFees, now: TxFees): TxFees | undefined {
  if ("gasPrice" in stuck && "gasPrice" in now) {
    const [old, price] = [BigInt(stuck.gasPrice), BigInt(now.gasPrice)];
    return price > old ? { gasPrice: maxOf(price, bumped(old)).toString() } : undefined;
  }
  if ("maxFeePerGas" in stuck && "maxFeePerGas" in now) {
    const [oldCap, oldTip] = [BigInt(stuck.maxFeePerGas), BigInt(stuck.maxPriorityFeePerGas)];
    const [cap, tip] = [BigInt(now.maxFeePerGas), BigInt(now.maxPriorityFeePerGas)];
    if (cap <= oldCap && tip <= oldTip) return undefined;
    const newTip = maxOf(tip, bumped(oldTip));
    return { maxFeePerGas: maxOf(maxOf(cap, bumped(oldCap)), newTip).toString(), maxPriorityFeePerGas: newTip.toString() };
  }
  return undefined; // the chain changed fee markets under a pending transaction: leave it be
}

/** When `tx` becomes due for a look at its fees; never for records made before replacement existed. */
export function replacementDueAt(tx: RecordedTx, afterMs: number): number {
  return tx.fees && tx.gas && tx.signedAt !== undefined ? tx.signedAt + afterMs : Infinity;
}

/** A replacement was asked for with a call other than the one the stuck transaction carries. */
export class ReplacementCallError extends Error {
  constructor(readonly stuck: Hex) {
    super(`the call rebuilt to replace ${stuck} differs from the one it carries`);
    this.name = "ReplacementCallError";
  }
}

/**
 * `stuck` signed again with fees from `replacementFees` against today's quote, or undefined when it
 * pays what the chain asks. `call` must be the one `stuck` carries (a different call at its nonce
 * throws ReplacementCallError): the caller rebuilds it rather than trusting stored bytes blindly.
 */
export async function signReplacement(signer: EvmSigner, stuck: RecordedTx, call: { to: Address; data: Hex }, fees: FeeOracle): Promise<RecordedTx | undefined> {
  const carried = parseTransaction(stuck.raw);
  const sameCall = (carried.data ?? "0x").toLowerCase() === call.data.toLowerCase() && !!carried.to && isAddressEqual(carried.to, call.to);
  if (!sameCall) throw new ReplacementCallError(stuck.hash);
  if (!stuck.fees || !stuck.gas) return undefined;
  const raised = replacementFees(stuck.fees, txFeesOf(await fees.quote()));
  if (!raised) return undefined;
  const request = { ...call, gas: BigInt(stuck.gas), value: carried.value ?? 0n };
  const tx = await signer.sign(request, feeQuoteOf(raised), stuck.nonce);
  return { ...tx, from: stuck.from, gas: stuck.gas, fees: raised, signedAt: Date.now(), replaced: [...(stuck.replaced ?? []), stuck.hash] };
}
