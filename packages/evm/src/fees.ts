/** Fee quotes from the chain, cached briefly so a burst of settlements asks the node once. */
import type { PublicClient } from "viem";

export type FeeQuote =
  | { type: "eip1559"; maxFeePerGas: bigint; maxPriorityFeePerGas: bigint }
  | { type: "legacy"; gasPrice: bigint };

/**
 * maxFeePerGas = 2 x base fee + tip. A settlement is never re-signed with higher fees (that would
 * make a second transaction for one payment), so its fee cap must survive base fee rises: 2x covers
 * about six full blocks in a row, and only base fee + tip is ever charged.
 */
export function quoteFromBlock(baseFeePerGas: bigint | null | undefined, tip: bigint, gasPrice: bigint): FeeQuote {
  if (baseFeePerGas === null || baseFeePerGas === undefined) return { type: "legacy", gasPrice };
  return { type: "eip1559", maxFeePerGas: 2n * baseFeePerGas + tip, maxPriorityFeePerGas: tip };
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
