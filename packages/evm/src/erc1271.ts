/**
 * Whose signature is it? A payer's signature is proven before a payment's ledger key is claimed:
 * ECDSA by the payer (pure, checked while parsing), or, for a payer with code (a smart wallet, or an
 * EOA delegated through EIP-7702, whose code is `0xef0100 || delegate`), ERC-1271's
 * `isValidSignature(digest, signature)` answering the magic value. Otherwise nobody proved the payer
 * agreed, and nothing may be claimed, simulated for gas, or sent.
 */
import { Reason, reject, type Rejection } from "@facilitator/core";
import { encodeFunctionData, parseAbi, type Address, type Hex, type PublicClient } from "viem";
import { hasCode } from "./batched-reads.ts";
import { isTransientRpcError, revertReason } from "./rpc-errors.ts";

const erc1271 = parseAbi(["function isValidSignature(bytes32 hash, bytes signature) view returns (bytes4)"]);
/** `bytes4(keccak256("isValidSignature(bytes32,bytes)"))`, what a wallet answers for a signature it accepts. */
export const ERC1271_MAGIC = "0x1626ba7e";

export interface SignedPayment {
  payer: Address;
  /** The EIP-712 digest the payer signed. */
  digest: Hex;
  signature: Hex;
  /** True when the signature is the payer's own valid low-s ECDSA signature. */
  ecdsaValid: boolean;
}

/**
 * Undefined when the payer's signature is proven; the refusal (with `reason`) otherwise. Throws only
 * when the node cannot be reached.
 */
export async function checkPayerSignature(client: PublicClient, p: SignedPayment, reason: Rejection["reason"] = Reason.signature): Promise<Rejection | undefined> {
  if (p.ecdsaValid) return undefined;
  const data = encodeFunctionData({ abi: erc1271, functionName: "isValidSignature", args: [p.digest, p.signature] });
  const [code, answer] = await Promise.allSettled([
    client.request({ method: "eth_getCode", params: [p.payer, "latest"] }),
    client.request({ method: "eth_call", params: [{ to: p.payer, data }, "latest"] }),
  ]);
  for (const r of [code, answer]) if (r.status === "rejected" && isTransientRpcError(r.reason)) throw r.reason;
  if (!hasCode(code)) return reject(reason, `the signature is not ${p.payer}'s, and ${p.payer} is not a contract wallet`);
  if (answer.status === "rejected") {
    return reject(reason, `${p.payer} is a contract wallet and its isValidSignature reverted: ${revertReason(answer.reason)}`);
  }
  return typeof answer.value === "string" && isMagicWord(answer.value)
    ? undefined
    : reject(reason, `${p.payer} is a contract wallet and its isValidSignature did not accept the signature`);
}

/** The ABI-encoded bytes4 answer: the magic value, left-aligned in one 32-byte word. */
function isMagicWord(word: string): boolean {
  return word.length === 66 && word.toLowerCase() === ERC1271_MAGIC + "0".repeat(56);
}
