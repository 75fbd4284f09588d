import {
  createPublicClient,
  createWalletClient,
  defineChain,
  getAddress,
  http,
  parseAbi,
  BaseError,
  ContractFunctionRevertedError,
  type Address,
  type Chain,
  type Hex,
  type PrivateKeyAccount,
  type TransactionReceipt,
  type Transport,
  type WalletClient,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { loadArtifact, type Artifact } from "./artifacts.ts";

/** Where to send and who signs: every deploy helper takes these. */
export interface DeployTarget {
  rpcUrl: string;
  chainId: number;
  /** Pays for and signs the transactions; becomes the owner of Ownable contracts it deploys. */
  deployerKey: Hex;
}

/** Contracts compiled from /work/main/contracts that the devnet and tests deploy by name. */
export type ContractName = "TestUSDC" | "TestPermitToken" | "Erc1271Wallet" | "FickleWallet" | "WalletFactory" | "SettlementRelay";

export interface DeployContractOptions extends DeployTarget {
  /** A compiled contract name (loaded with `loadArtifact`) or an already-loaded artifact. */
  artifact: ContractName | (string & {}) | Artifact;
  args?: readonly unknown[];
}

export interface DeployTokenOptions extends DeployTarget {
  /** ERC-20 name, also the EIP-712 domain name. */
  name: string;
  /** EIP-712 domain version (USDC: "2", USDm: "1"). */
  version: string;
  decimals: number;
  /** Defaults to "USDC" for deployTestUsdc and "USDm" for deployPermitToken. */
  symbol?: string;
}

export interface MintTokensOptions extends DeployTarget {
  token: Address;
  to: Address;
  amount: bigint;
}

export interface DeployErc1271WalletOptions extends DeployTarget {
  /** The EOA whose ECDSA signatures over a raw hash the wallet accepts as its own. */
  owner: Address;
}

/** Source files of artifacts that do not live at contracts/<Name>.sol. */
const ARTIFACT_SOURCES: Record<string, string> = { Erc1271Wallet: "mocks/Erc1271Wallet.sol", FickleWallet: "mocks/FickleWallet.sol", WalletFactory: "mocks/WalletFactory.sol" };

/** A viem chain for a local node (e.g. anvil standing in for base-sepolia with chain id 84532). */
export function localChain(chainId: number, rpcUrl: string): Chain {
  return defineChain({
    id: chainId,
    name: `local-${chainId}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  });
}

/** Deploys a compiled contract, waits for the receipt and returns its (checksummed) address. */
export async function deployContract(opts: DeployContractOptions): Promise<Address> {
  const artifact =
    typeof opts.artifact === "string" ? loadArtifact(opts.artifact, ARTIFACT_SOURCES[opts.artifact]) : opts.artifact;
  const label = `deploy ${typeof opts.artifact === "string" ? opts.artifact : "contract"}`;
  const receipt = await sendAndWait(opts, label, (wallet) =>
    wallet.deployContract({ abi: artifact.abi, bytecode: artifact.bytecode, args: opts.args ?? [] } as never),
  );
  if (!receipt.contractAddress) throw new Error(`${label}: receipt ${receipt.transactionHash} has no contract address`);
  return getAddress(receipt.contractAddress);
}

/** A USDC-like token: ERC-2612 permit plus EIP-3009, owned (mintable) by the deployer. */
export function deployTestUsdc(opts: DeployTokenOptions): Promise<Address> {
  return deployToken("TestUSDC", opts, "USDC");
}

/** A USDm-like token: ERC-2612 permit only, owned (mintable) by the deployer. */
export function deployPermitToken(opts: DeployTokenOptions): Promise<Address> {
  return deployToken("TestPermitToken", opts, "USDm");
}

/** Mints `amount` base units of `token` to `to`; `deployerKey` must be the token's owner. */
export async function mintTokens(opts: MintTokensOptions): Promise<void> {
  const abi = parseAbi(["function mint(address to, uint256 amount)", "error OwnableUnauthorizedAccount(address account)"]);
  await sendAndWait(opts, `mint ${opts.amount} of ${opts.token} to ${opts.to}`, (wallet) =>
    wallet.writeContract({ address: opts.token, abi, functionName: "mint", args: [opts.to, opts.amount] }),
  );
}

/** A minimal ERC-1271 smart-contract wallet controlled by `owner`. */
export function deployErc1271Wallet(opts: DeployErc1271WalletOptions): Promise<Address> {
  return deployContract({ ...opts, artifact: "Erc1271Wallet", args: [opts.owner] });
}

function deployToken(artifact: ContractName, opts: DeployTokenOptions, defaultSymbol: string): Promise<Address> {
  const args = [opts.name, opts.symbol ?? defaultSymbol, opts.version, opts.decimals];
  return deployContract({ rpcUrl: opts.rpcUrl, chainId: opts.chainId, deployerKey: opts.deployerKey, artifact, args });
}

type DeployWallet = WalletClient<Transport, Chain, PrivateKeyAccount>;

/**
 * Sends one transaction and waits for its receipt; throws if it cannot be sent or it reverted.
 * Sends from one key to one node are serialised so each picks up the next pending nonce, which lets
 * callers deploy and mint in parallel without "nonce too low" (receipt waits still overlap).
 */
async function sendAndWait(
  target: DeployTarget,
  label: string,
  send: (wallet: DeployWallet) => Promise<Hex>,
): Promise<TransactionReceipt> {
  const chain = localChain(target.chainId, target.rpcUrl);
  const account = privateKeyToAccount(target.deployerKey);
  const transport = http(target.rpcUrl);
  const wallet = createWalletClient({ account, chain, transport, pollingInterval: 50 });
  const client = createPublicClient({ chain, transport, pollingInterval: 50 });
  let hash: Hex;
  try {
    hash = await oneAtATime(`${target.rpcUrl}|${account.address}`, () => send(wallet));
  } catch (e) {
    throw new Error(`${label} failed: ${failureReason(e)}`, { cause: e });
  }
  const receipt = await client.waitForTransactionReceipt({ hash, timeout: 30_000 });
  if (receipt.status !== "success") throw new Error(`${label} reverted (tx ${hash})`);
  return receipt;
}

/** The decoded revert (e.g. `OwnableUnauthorizedAccount(0x...)`) when there is one, else viem's short message. */
function failureReason(e: unknown): string {
  if (!(e instanceof BaseError)) return (e as Error).message;
  const revert = e.walk((err) => err instanceof ContractFunctionRevertedError);
  if (revert instanceof ContractFunctionRevertedError) {
    if (revert.data) return `reverted with ${revert.data.errorName}(${(revert.data.args ?? []).join(", ")})`;
    if (revert.reason) return `reverted: ${revert.reason}`;
  }
  return e.shortMessage;
}

const queues = new Map<string, Promise<unknown>>();

/** Runs `task` after every earlier task with the same key has finished (success or not). */
function oneAtATime<T>(key: string, task: () => Promise<T>): Promise<T> {
  const result = (queues.get(key) ?? Promise.resolve()).then(task);
  const done = result.catch(() => undefined);
  queues.set(key, done);
  void done.then(() => {
    if (queues.get(key) === done) queues.delete(key);
  });
  return result;
}
