/** Deploying the project's contracts from their compiled artifacts (used by the deploy commands, devnets and tests). */
import { createPublicClient, createWalletClient, defineChain, http, type Abi, type Address, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

export interface DeployArtifactOptions {
  rpcUrl: string;
  /** Read from the node when omitted. */
  chainId?: number;
  deployerKey: Hex;
  /** `loadArtifact(name)` from @facilitator/devnet, or the same fields from elsewhere. */
  artifact: { abi: Abi; bytecode: Hex };
  pollingIntervalMs?: number;
}

export interface Deployed {
  address: Address;
  transactionHash: Hex;
  blockNumber: bigint;
  chainId: number;
}

/** Deploys `artifact` with constructor `args` from the deployer's key and waits for its receipt. */
export async function deployArtifact(opts: DeployArtifactOptions & { name: string; args: readonly unknown[] }): Promise<Deployed> {
  const account = privateKeyToAccount(opts.deployerKey);
  const chainId = opts.chainId ?? (await createPublicClient({ transport: http(opts.rpcUrl) }).getChainId());
  const chain = defineChain({
    id: chainId,
    name: `chain-${chainId}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [opts.rpcUrl] } },
  });
  const pollingInterval = opts.pollingIntervalMs ?? 1000;
  const wallet = createWalletClient({ account, chain, transport: http(opts.rpcUrl), pollingInterval });
  const client = createPublicClient({ chain, transport: http(opts.rpcUrl), pollingInterval });
  const hash = await wallet.deployContract({ abi: opts.artifact.abi, bytecode: opts.artifact.bytecode, args: opts.args } as never);
  const receipt = await client.waitForTransactionReceipt({ hash, timeout: 180_000 });
  if (receipt.status !== "success" || !receipt.contractAddress) throw new Error(`${opts.name} deployment ${hash} failed`);
  return { address: receipt.contractAddress, transactionHash: hash, blockNumber: receipt.blockNumber, chainId };
}

export interface DeployRelayOptions extends DeployArtifactOptions {
  /** Holds DEFAULT_ADMIN_ROLE (grants and revokes relayers); defaults to the deployer. */
  admin?: Address;
  relayers: readonly Address[];
}

export async function deploySettlementRelay(opts: DeployRelayOptions): Promise<{ address: Address; transactionHash: Hex; blockNumber: bigint }> {
  const admin = opts.admin ?? privateKeyToAccount(opts.deployerKey).address;
  const { address, transactionHash, blockNumber } = await deployArtifact({ ...opts, name: "SettlementRelay", args: [admin, [...opts.relayers]] });
  return { address, transactionHash, blockNumber };
}
