/** Whether a recorded transaction was mined, is still pending, or can never be mined (dropped). */
import type { PublicClient } from "viem";
import { getReceipt } from "./receipt.ts";
import type { RecordedTx, TxOutcome } from "./recorded-tx.ts";

/**
 * Mined (by `tx` or a transaction it replaced), pending, or dropped: its nonce went to a transaction
 * that is none of them. The nonce is read before the receipts, so "dropped" is never a race.
 */
export async function txOutcome(client: PublicClient, tx: RecordedTx): Promise<TxOutcome> {
  const confirmedNonce = await client.getTransactionCount({ address: tx.from, blockTag: "latest" });
  const receipts = await Promise.all([tx.hash, ...(tx.replaced ?? [])].map((hash) => getReceipt(client, hash)));
  const receipt = receipts.find((r) => r !== null);
  if (receipt) return { state: "mined", receipt };
  return confirmedNonce > tx.nonce ? { state: "dropped" } : { state: "pending" };
}
