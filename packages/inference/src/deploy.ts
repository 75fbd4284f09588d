/** Deploying SettlementRelay from its compiled artifact (used by scripts/deploy-relay.ts, devnets and tests). */
import { createPublicClient, createWalletClient, defineChain, http, type Abi, type Address, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

export interface DeployRelayOptions {
  rpcUrl: string;
  /** Read from the node when omitted. */
  chainId?: number;
  deployerKey: Hex;
  /** Holds DEFAULT_ADMIN_ROLE (grants and revokes relayers); defaults to the deployer. */
  admin?: Address;
  relayers: readonly Address[];
  /** `loadArtifact("SettlementRelay")` from @facilitator/devnet, or the same fields from elsewhere. */
  artifact: { abi: Abi; bytecode: Hex };
  pollingIntervalMs?: number;
}

export async function deploySettlementRelay(opts: DeployRelayOptions): Promise<{ address: Address; transactionHash: Hex; blockNumber: bigint }> {
  const account = privateKeyToAccount(opts.deployerKey);
  const probe = createPublicClient({ transport: http(opts.rpcUrl) });
  const chainId = opts.chainId ?? (await probe.getChainId());
  const chain = defineChain({
    id: chainId,
    name: `chain-${chainId}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [opts.rpcUrl] } },
  });
  const pollingInterval = opts.pollingIntervalMs ?? 1000;
  const wallet = createWalletClient({ account, chain, transport: http(opts.rpcUrl), pollingInterval });
  const client = createPublicClient({ chain, transport: http(opts.rpcUrl), pollingInterval });
  const hash = await wallet.deployContract({
    abi: opts.artifact.abi,
    bytecode: opts.artifact.bytecode,
    args: [opts.admin ?? account.address, [...opts.relayers]],
  } as never);
  const receipt = await client.waitForTransactionReceipt({ hash, timeout: 180_000 });
  if (receipt.status !== "success" || !receipt.contractAddress) throw new Error(`SettlementRelay deployment ${hash} failed`);
  return { address: receipt.contractAddress, transactionHash: hash, blockNumber: receipt.blockNumber };
}
