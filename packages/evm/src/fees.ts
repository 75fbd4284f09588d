/** Fee quotes from the chain, cached briefly so a burst of settlements asks the node once. */
import type { PublicClient } from "viem";

export type FeeQuote =
  | { type: "eip1559"; maxFeePerGas: bigint; maxPriorityFeePerGas: bigint; /** The latest block's, when known. */ baseFeePerGas?: bigint }
  | { type: "legacy"; gasPrice: bigint };

/**
 * maxFeePerGas = 2 x base fee + tip. A settlement is never re-signed with higher fees (that would
 * make a second transaction for one payment), so its fee cap must survive base fee rises: 2x covers
 * about six full blocks in a row, and only base fee + tip is ever charged.
 */
export function quoteFromBlock(baseFeePerGas: bigint | null | undefined, tip: bigint, gasPrice: bigint): FeeQuote {
  if (baseFeePerGas === null || baseFeePerGas === undefined) return { type: "legacy", gasPrice };
  return { type: "eip1559", maxFeePerGas: 2n * baseFeePerGas + tip, maxPriorityFeePerGas: tip, baseFeePerGas };
}

export class FeeOracle {
  private cached?: { quote: FeeQuote; at: number };
  private inFlight?: Promise<FeeQuote>;

  constructor(
    private readonly client: PublicClient,
    private readonly maxAgeMs = 1000,
  ) {}

  async quote(): Promise<FeeQuote> {
    if (this.cached && Date.now() - this.cached.at < this.maxAgeMs) return this.cached.quote;
    this.inFlight ??= this.fetch().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  private async fetch(): Promise<FeeQuote> {
    // Issued together: one JSON-RPC batch.
    const [block, tip, gasPrice] = await Promise.all([
      this.client.request({ method: "eth_getBlockByNumber", params: ["latest", false] }),
      this.client.request({ method: "eth_maxPriorityFeePerGas" }).catch(() => "0x0" as const),
      this.client.request({ method: "eth_gasPrice" }),
    ]);
    const baseFee = block?.baseFeePerGas ? BigInt(block.baseFeePerGas) : undefined;
    const quote = quoteFromBlock(baseFee, BigInt(tip), BigInt(gasPrice));
    this.cached = { quote, at: Date.now() };
    return quote;
  }
}

/**
 * The quote held under the operator's cap on the fee per gas: the cap lowers the headroom of
 * `maxFeePerGas`, never what the chain asks now. Undefined when the chain now asks more than the cap
 * (base fee + tip, or the legacy gas price): then nothing is signed.
 */
export function capFees(quote: FeeQuote, maxFeePerGas: bigint): FeeQuote | undefined {
  if (quote.type === "legacy") return quote.gasPrice <= maxFeePerGas ? quote : undefined;
  // Without the block's base fee (a quote rebuilt from stored fees), its ceiling is all we know it asks.
  const asksNow = quote.baseFeePerGas === undefined ? quote.maxFeePerGas : quote.baseFeePerGas + quote.maxPriorityFeePerGas;
  if (asksNow > maxFeePerGas) return undefined;
  return quote.maxFeePerGas <= maxFeePerGas ? quote : { ...quote, maxFeePerGas };
}

/** What a quote charges per gas at most, for messages. */
export function feeCeiling(quote: FeeQuote): bigint {
  return quote.type === "legacy" ? quote.gasPrice : quote.maxFeePerGas;
}
