/** The chain state an EIP-3009 payment depends on, read in one JSON-RPC batch. */
import { encodeFunctionData, parseAbi, type Address, type Hex, type PublicClient } from "viem";
import { hasCode, word } from "./batched-reads.ts";
import { isTransientRpcError, revertReason } from "./rpc-errors.ts";

const tokenReads = parseAbi([
  "function balanceOf(address owner) view returns (uint256)",
  "function authorizationState(address authorizer, bytes32 nonce) view returns (bool)",
]);

export interface Eip3009ChainState {
  assetHasCode: boolean;
  payerHasCode: boolean;
  /** Undefined when the asset did not answer (then the simulation tells what is wrong). */
  balance?: bigint;
  nonceUsed?: boolean;
  /** The simulation's outcome: gas used (estimate) or 0n (call) on success, the revert reason otherwise. */
  simulation: { ok: true; gas: bigint } | { ok: false; reason: string };
}

export interface Eip3009ReadRequest {
  asset: Address;
  payer: Address;
  nonce: Hex;
  /** Who would send the settlement: the simulation runs as this account. */
  settler: Address;
  /** Settlement calldata to simulate against `asset`. */
  data: Hex;
  simulate: "call" | "estimate";
  /** The signature is the payer's own ECDSA one, so the payer's code does not matter. */
  ecdsaValid?: boolean;
}

/** Assets known to have code, per client (a token's code does not go away). */
const assetsWithCode = new WeakMap<PublicClient, Set<string>>();

/**
 * Issues every read in the same tick, so the client's transport (rpc-transport.ts) sends them as one
 * JSON-RPC batch: getCode(asset), getCode(payer), balanceOf, authorizationState, and the simulation.
 * Throws when the node could not be reached; a node's answer (revert included) is never thrown.
 */
export async function readEip3009State(client: PublicClient, r: Eip3009ReadRequest): Promise<Eip3009ChainState> {
  const call = (data: Hex) => client.request({ method: "eth_call", params: [{ to: r.asset, data }, "latest"] });
  const tx = { from: r.settler, to: r.asset, data: r.data };
  if (r.ecdsaValid) {
    // The common case needs one call, the simulation (plus the asset's code once):
    // a simulation that passes already proves balance and an unused nonce. Only a failure reads the rest, to say why.
    const known = assetsWithCode.get(client) ?? new Set<string>();
    assetsWithCode.set(client, known);
    const [assetCode, simulation] = await Promise.allSettled([
      known.has(r.asset) ? Promise.resolve("0x01") : client.request({ method: "eth_getCode", params: [r.asset, "latest"] }),
      r.simulate === "estimate"
        ? client.request({ method: "eth_estimateGas", params: [tx] })
        : client.request({ method: "eth_call", params: [tx, "latest"] }),
    ]);
    for (const result of [assetCode, simulation]) {
      if (result.status === "rejected" && isTransientRpcError(result.reason)) throw result.reason;
    }
    if (simulation.status === "fulfilled" && hasCode(assetCode)) {
      known.add(r.asset);
      return { assetHasCode: true, payerHasCode: false, simulation: { ok: true, gas: r.simulate === "estimate" ? BigInt(simulation.value as Hex) : 0n } };
    }
  }
  const [assetCode, payerCode, balance, used, simulation] = await Promise.allSettled([
    client.request({ method: "eth_getCode", params: [r.asset, "latest"] }),
    client.request({ method: "eth_getCode", params: [r.payer, "latest"] }),
    call(encodeFunctionData({ abi: tokenReads, functionName: "balanceOf", args: [r.payer] })),
    call(encodeFunctionData({ abi: tokenReads, functionName: "authorizationState", args: [r.payer, r.nonce] })),
    r.simulate === "estimate"
      ? client.request({ method: "eth_estimateGas", params: [tx] })
      : client.request({ method: "eth_call", params: [tx, "latest"] }),
  ]);
  for (const result of [assetCode, payerCode, balance, used, simulation]) {
    if (result.status === "rejected" && isTransientRpcError(result.reason)) throw result.reason;
  }
  return {
    assetHasCode: hasCode(assetCode),
    payerHasCode: hasCode(payerCode),
    balance: word(balance),
    nonceUsed: word(used) === undefined ? undefined : word(used) !== 0n,
    simulation:
      simulation.status === "fulfilled"
        ? { ok: true, gas: r.simulate === "estimate" ? BigInt(simulation.value as Hex) : 0n }
        : { ok: false, reason: revertReason(simulation.reason) },
  };
}
