/** What the local EVM chains show, read straight from the node: balances, transactions, events. */
import { createPublicClient, erc20Abi, http, parseAbi, type Address, type Hex } from "viem";
import { localChain, type EvmWorldNetwork } from "@facilitator/devnet";

const tokenEvents = parseAbi([
  "event Transfer(address indexed from, address indexed to, uint256 value)",
  "event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce)",
]);

/** Chain reads for assertions on one network of the world: what a user would check on a block explorer. */
export function chainView(n: EvmWorldNetwork) {
  const client = createPublicClient({ chain: localChain(n.chainId, n.rpcUrl), transport: http(n.rpcUrl), pollingInterval: 50, cacheTime: 0 });
  return {
    client,
    blockNumber: () => client.getBlockNumber(),
    /** Transactions sent so far from `who` (mined): for the facilitator's signers, what they have sent. */
    txCount: (who: Address) => client.getTransactionCount({ address: who, blockTag: "latest" }),
    balanceOf: (who: Address) => client.readContract({ address: n.asset.address, abi: erc20Abi, functionName: "balanceOf", args: [who] }),
    ethBalance: (who: Address) => client.getBalance({ address: who }),
    /** How many times each EIP-3009 authorization nonce of the payer was used on chain since `fromBlock`. */
    async authorizationsUsed(fromBlock: bigint): Promise<Map<string, number>> {
      const logs = await client.getContractEvents({ address: n.asset.address, abi: tokenEvents, eventName: "AuthorizationUsed", fromBlock, toBlock: "latest" });
      const counts = new Map<string, number>();
      for (const l of logs) counts.set(l.args.nonce!.toLowerCase(), (counts.get(l.args.nonce!.toLowerCase()) ?? 0) + 1);
      return counts;
    },
    /** Token transfers from the payer to payTo since `fromBlock`. */
    async payments(fromBlock: bigint) {
      const logs = await client.getContractEvents({
        address: n.asset.address,
        abi: tokenEvents,
        eventName: "Transfer",
        args: { from: n.payer.address, to: n.payTo },
        fromBlock,
        toBlock: "latest",
      });
      return logs.map((l) => ({ value: l.args.value!, transactionHash: l.transactionHash, from: l.args.from! }));
    },
    /** The sender of each transaction hash. */
    async senders(hashes: readonly Hex[]): Promise<Address[]> {
      return Promise.all(hashes.map(async (hash) => (await client.getTransaction({ hash })).from));
    },
  };
}

/** One JSON-RPC call straight to a node (anvil's test methods: evm_setAutomine, evm_mine, ...). */
export async function nodeRpc<T = unknown>(rpcUrl: string, method: string, params: unknown[] = []): Promise<T> {
  const res = await fetch(rpcUrl, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) });
  const body = (await res.json()) as { result?: T; error?: { message: string } };
  if (body.error) throw new Error(`${method}: ${body.error.message}`);
  return body.result as T;
}
