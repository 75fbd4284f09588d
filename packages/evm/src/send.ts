/** Sending signed bytes. The same bytes may be sent any number of times: they carry one hash and one nonce. */
import type { Hex, PublicClient } from "viem";
import { isTransientRpcError, nodeMessage } from "./rpc-errors.ts";

export type SendResult =
  /** The node has it (now, or already had it). */
  | { kind: "accepted" }
  /** The sender's nonce is past this one: the tx was mined already, or another tx took its nonce. */
  | { kind: "nonceTooLow"; message: string }
  /** Another transaction holds this nonce in the pool (e.g. another process using the same key). */
  | { kind: "nonceTaken"; message: string }
  /** The node refused it (funds, fees, gas, ...): it is not in the pool. */
  | { kind: "rejected"; message: string }
  /** No answer after the retries: the node may or may not have it. */
  | { kind: "unreachable"; message: string };

const ALREADY_KNOWN = /already known|known transaction|already imported|alreadyknown|already in (the )?(mem)?pool/i;
const NONCE_TOO_LOW = /nonce too low|nonce is too low|oldnonce|nonce has already been used|invalid nonce.*lower/i;
const NONCE_TAKEN = /replacement transaction underpriced|replacement.*underpriced|already exists.*nonce|same nonce/i;
const INSUFFICIENT_FUNDS = /insufficient funds|insufficientfunds|exceeds transaction sender account balance/i;

/** Refused because the sender cannot pay for gas: sending again does not help until it is funded. */
export function lacksFunds(sent: SendResult): boolean {
  return "message" in sent && INSUFFICIENT_FUNDS.test(sent.message);
}

export async function sendRawTransaction(
  client: PublicClient,
  raw: Hex,
  opts: { retries?: number; backoffMs?: number } = {},
): Promise<SendResult> {
  const retries = opts.retries ?? 3;
  let last = "";
  for (let attempt = 0; attempt <= retries; attempt++) {
    try {
      await client.request({ method: "eth_sendRawTransaction", params: [raw] }, { retryCount: 0 });
      return { kind: "accepted" };
    } catch (e) {
      const message = nodeMessage(e);
      if (ALREADY_KNOWN.test(message)) return { kind: "accepted" };
      if (NONCE_TOO_LOW.test(message)) return { kind: "nonceTooLow", message };
      if (NONCE_TAKEN.test(message)) return { kind: "nonceTaken", message };
      if (!isTransientRpcError(e)) return { kind: "rejected", message };
      last = message;
      await new Promise((r) => setTimeout(r, (opts.backoffMs ?? 100) * 3 ** attempt));
    }
  }
  return { kind: "unreachable", message: last };
}
