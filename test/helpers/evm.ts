/** Chain reads for assertions: what a user would check on a block explorer. */
import { createPublicClient, erc20Abi, http, type Address } from "viem";
import type { EvmWorldNetwork } from "@facilitator/devnet";
import { localChain } from "@facilitator/devnet";

export function chainReader(n: EvmWorldNetwork) {
  const client = createPublicClient({ chain: localChain(n.chainId, n.rpcUrl), transport: http(n.rpcUrl), pollingInterval: 50 });
  return {
    client,
    balanceOf: (who: Address) => client.readContract({ address: n.asset.address, abi: erc20Abi, functionName: "balanceOf", args: [who] }),
    ethBalance: (who: Address) => client.getBalance({ address: who }),
    /** Transactions the facilitator's signers have sent so far. */
    txCount: (who: Address) => client.getTransactionCount({ address: who }),
  };
}
