/** The SettlementRelay on the local world: deployed for a suite, and its batches as an auditor would scan them. */
import { createPublicClient, http, type Address, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { devKey, DevRole, loadArtifact, type EvmWorld } from "@facilitator/devnet";
import { deploySettlementRelay, SETTLEMENT_RELAY_ABI } from "@facilitator/inference";

/** A SettlementRelay on the world's base-sepolia chain whose relayer is `DevRole.relayer`. */
export async function deployRelay(world: EvmWorld): Promise<{ address: Address; blockNumber: bigint; relayerKey: Hex }> {
  const chain = world.networks["base-sepolia"]!;
  const relayerKey = devKey(DevRole.relayer);
  const relay = await deploySettlementRelay({
    rpcUrl: chain.rpcUrl,
    chainId: chain.chainId,
    deployerKey: world.deployerKey,
    relayers: [privateKeyToAccount(relayerKey).address],
    artifact: loadArtifact("SettlementRelay"),
    pollingIntervalMs: 50,
  });
  return { address: relay.address, blockNumber: relay.blockNumber, relayerKey };
}

/** BatchSettlement events of the relay since `fromBlock`: what an auditor would scan. */
export async function relayBatches(rpcUrl: string, relayAddress: Address, fromBlock: bigint) {
  const client = createPublicClient({ transport: http(rpcUrl) });
  const logs = await client.getContractEvents({ address: relayAddress, abi: SETTLEMENT_RELAY_ABI, eventName: "BatchSettlement", fromBlock, toBlock: "latest" });
  return logs.map((l) => ({ root: l.args.merkleRoot!, batchSize: Number(l.args.batchSize!), transactionHash: l.transactionHash, blockNumber: l.blockNumber }));
}
