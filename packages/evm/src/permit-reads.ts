/** The chain state an ERC-2612 permit payment depends on, read in one JSON-RPC batch. */
import { encodeFunctionData, parseAbi, type Address, type Hex, type PublicClient } from "viem";
import type { PermitChainState } from "./permit.ts";
import { hasCode, word } from "./batched-reads.ts";
import { isTransientRpcError, revertReason } from "./rpc-errors.ts";

export const permitTokenAbi = parseAbi([
  "function balanceOf(address owner) view returns (uint256)",
  "function nonces(address owner) view returns (uint256)",
  "function allowance(address owner, address spender) view returns (uint256)",
  "function transfer(address to, uint256 value) returns (bool)",
  "function transferFrom(address from, address to, uint256 value) returns (bool)",
]);

export interface PermitReadRequest {
  asset: Address;
  owner: Address;
  spender: Address;
  payTo: Address;
  value: bigint;
  /** `permit(...)` calldata. */
  permitData: Hex;
  simulate: "call" | "estimate";
}

/**
 * Issues every read in the same tick, so the client's transport (rpc-transport.ts) sends them as one
 * JSON-RPC batch: getCode(asset), getCode(owner), balanceOf, nonces, allowance, and three simulations:
 * permit from the spender; transferFrom from the spender (succeeds only with an allowance already in
 * place); transfer(payTo, value) from the owner, which moves the same balances as the transferFrom
 * will once the permit has set the allowance. No state override is needed, so this works on any node
 * and on any token storage layout. Throws when the node could not be reached; a node's answer
 * (revert included) is never thrown.
 */
export async function readPermitState(client: PublicClient, r: PermitReadRequest): Promise<PermitChainState> {
  const read = (data: Hex) => client.request({ method: "eth_call", params: [{ to: r.asset, data }, "latest"] });
  const simulate = (from: Address, data: Hex) => {
    const tx = { from, to: r.asset, data };
    return r.simulate === "estimate"
      ? client.request({ method: "eth_estimateGas", params: [tx] })
      : client.request({ method: "eth_call", params: [tx, "latest"] });
  };
  const encode = (functionName: "transfer" | "transferFrom" | "balanceOf" | "nonces" | "allowance", args: readonly unknown[]) =>
    encodeFunctionData({ abi: permitTokenAbi, functionName, args } as never);
  const results = await Promise.allSettled([
    client.request({ method: "eth_getCode", params: [r.asset, "latest"] }),
    client.request({ method: "eth_getCode", params: [r.owner, "latest"] }),
    read(encode("balanceOf", [r.owner])),
    read(encode("nonces", [r.owner])),
    read(encode("allowance", [r.owner, r.spender])),
    simulate(r.spender, r.permitData),
    simulate(r.spender, encode("transferFrom", [r.owner, r.payTo, r.value])),
    simulate(r.owner, encode("transfer", [r.payTo, r.value])),
  ]);
  for (const result of results) {
    if (result.status === "rejected" && isTransientRpcError(result.reason)) throw result.reason;
  }
  const [assetCode, ownerCode, balance, nonce, allowance, permit, transferFrom, transfer] = results;
  const outcome = (s: PromiseSettledResult<unknown>) =>
    s.status === "fulfilled"
      ? { ok: true as const, gas: r.simulate === "estimate" ? BigInt(s.value as Hex) : 0n }
      : { ok: false as const, reason: revertReason(s.reason) };
  return {
    assetHasCode: hasCode(assetCode!),
    ownerHasCode: hasCode(ownerCode!),
    balance: word(balance!),
    nonce: word(nonce!),
    allowance: word(allowance!),
    permit: outcome(permit!),
    transferFrom: outcome(transferFrom!),
    transfer: outcome(transfer!),
  };
}
