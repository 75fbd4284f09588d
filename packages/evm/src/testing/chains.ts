/** Local chains for this package's tests: base-sepolia (84532, TestUSDC) and MegaETH (4326, USDm-like permit token). */
import type { NetworkInfo, PaymentRequest, Requirements } from "@facilitator/core";
import { CHAIN_IDS, deployPermitToken, deployTestUsdc, devKey, DevRole, mintTokens, startAnvil, type AnvilNode } from "@facilitator/devnet";
import { createPublicClient, encodeFunctionData, http, parseAbi, parseGwei, type Address, type Hash, type Hex, type LocalAccount, type PublicClient } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import type { TokenDomain } from "../eip3009.ts";
import { eip3009LedgerKey } from "../eip3009-handler.ts";
import { signEip3009Payload, type Eip3009PaymentInput } from "../eip3009-client.ts";
import { signPermitPayload, type PermitPaymentInput } from "../permit-client.ts";
import { permitLedgerKey } from "../permit.ts";
import { splitSignature } from "../signature.ts";

export const CHAIN_ID = CHAIN_IDS["base-sepolia"];
const erc20 = parseAbi([
  "function balanceOf(address) view returns (uint256)",
  "function authorizationState(address, bytes32) view returns (bool)",
]);

/** What every local test chain offers, whatever its token's transfer method. */
export interface ChainFixture {
  anvil: AnvilNode;
  network: NetworkInfo;
  asset: Address;
  domain: TokenDomain;
  client: PublicClient;
  deployerKey: Hex;
  facilitatorKey: Hex;
  facilitator: Address;
  payer: LocalAccount;
  payTo: Address;
  request(payload: object, requirements?: Partial<Requirements>): PaymentRequest;
  balanceOf(owner: Address, token?: Address): Promise<bigint>;
  /** Transactions `address` has had mined (its latest nonce). */
  minedCount(address?: Address): Promise<number>;
  rpc(method: string, params?: unknown[]): Promise<unknown>;
  /** The settlement ledger's key of a payment made on this chain. */
  ledgerKey(request: PaymentRequest): string;
  stop(): Promise<void>;
}

/** A v2 `exact` payment request on `network` as the mechanism receives it: `payload`, with requirements of 1000 base units to `payTo` unless overridden. */
function requestOn(network: NetworkInfo, payTo: Address, extra: Record<string, unknown>) {
  return (payload: object, requirements: Partial<Requirements> = {}): PaymentRequest => ({
    x402Version: 2,
    scheme: "exact",
    network,
    networkId: network.caip2,
    requirements: { scheme: "exact", amount: 1000n, asset: network.asset.address, payTo, maxTimeoutSeconds: 60, extra, ...requirements },
    payload: payload as Record<string, unknown>,
  });
}

export interface TestChain extends ChainFixture {
  /** A payment by `payer` (or `account`) of `value` (default 1000) to `payTo`, as the mechanism receives it. */
  pay(input?: Partial<Eip3009PaymentInput> & { account?: LocalAccount; requirements?: Partial<Requirements> }): Promise<PaymentRequest>;
  nonceUsed(from: Address, nonce: Hex): Promise<boolean>;
  /** Someone else (dev account 5) submits the payment's authorization directly, with a high tip. */
  submitElsewhere(request: PaymentRequest): Promise<Hash>;
}

const submitAbi = parseAbi(["function transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)"]);

/** An asset the test networks accept (as if configured in `extraAssets`) that has no code on chain. */
export const ACCEPTED_ASSET_WITHOUT_CODE = "0x00000000000000000000000000000000deadbeef";
/** An address no test network accepts as an asset. */
export const UNLISTED_ASSET = "0x000000000000000000000000000000000000f00d";
/** Someone other than the payer, who signs payments of their own (dev account 6). */
export const stranger = privateKeyToAccount(devKey(6));
/** An account holding neither tokens nor ETH (dev account 22). */
export const unfunded = privateKeyToAccount(devKey(22));
/** Now in unix seconds, the unit of `validBefore` and permit deadlines. */
export const now = () => BigInt(Math.floor(Date.now() / 1000));

interface TokenChainSpec {
  network: "base-sepolia" | "megaeth";
  chainId: number;
  token: { name: string; version: string; decimals: number; transferMethod: "eip3009" | "permit" };
  deploy: typeof deployTestUsdc;
  payerFunds: bigint;
  /** The requirements' `extra` beside the token's name and version. */
  extra?: (facilitator: Address) => Record<string, unknown>;
}

/**
 * anvil under the network's chain id with its token deployed and the payer (dev account 20, no ETH)
 * funded: what every test chain starts from. Also `mint`, and `sendAsThirdParty` (dev account 5 sends
 * `data` to the token with a high tip).
 */
async function startTokenChain(spec: TokenChainSpec) {
  const { chainId, token } = spec;
  const anvil = await startAnvil({ chainId });
  const deployerKey = devKey(DevRole.deployer);
  const facilitatorKey = devKey(DevRole.facilitator);
  const facilitator = privateKeyToAccount(facilitatorKey).address;
  const payer = privateKeyToAccount(devKey(20));
  const payTo = privateKeyToAccount(devKey(DevRole.payTo)).address;
  const target = { rpcUrl: anvil.rpcUrl, chainId, deployerKey };
  const asset = await spec.deploy({ ...target, name: token.name, version: token.version, decimals: token.decimals });
  const mint = (to: Address, amount: bigint) => mintTokens({ ...target, token: asset, to, amount });
  await mint(payer.address, spec.payerFunds);
  const client = createPublicClient({ transport: http(anvil.rpcUrl), cacheTime: 0 }) as PublicClient;
  const network: NetworkInfo = {
    name: spec.network,
    caip2: `eip155:${chainId}`,
    family: "evm",
    chainId,
    rpcUrl: anvil.rpcUrl,
    asset: { address: asset, ...token },
    extraAssets: [{ address: ACCEPTED_ASSET_WITHOUT_CODE, ...token }],
    testnet: true,
  };
  const domain: TokenDomain = { name: token.name, version: token.version, chainId, verifyingContract: asset };
  return {
    anvil, network, asset, domain, client, deployerKey, facilitatorKey, facilitator, payer, payTo, mint,
    request: requestOn(network, payTo, { name: token.name, version: token.version, ...spec.extra?.(facilitator) }),
    balanceOf: (owner: Address, tokenAddress: Address = asset) => client.readContract({ address: tokenAddress, abi: erc20, functionName: "balanceOf", args: [owner] }),
    minedCount: (address: Address = facilitator) => client.getTransactionCount({ address, blockTag: "latest" }),
    rpc: (method: string, params: unknown[] = []) => client.request({ method: method as never, params: params as never }),
    async sendAsThirdParty(data: Hex): Promise<Hash> {
      const tx = {
        from: privateKeyToAccount(devKey(DevRole.thirdParty)).address,
        to: asset,
        data,
        maxPriorityFeePerGas: `0x${parseGwei("50").toString(16)}`,
        maxFeePerGas: `0x${parseGwei("100").toString(16)}`,
      };
      return (await client.request({ method: "eth_sendTransaction" as never, params: [tx] as never })) as Hash;
    },
    stop: () => anvil.stop(),
  };
}

/** A local base-sepolia stand-in: anvil with chain id 84532 and TestUSDC (EIP-3009, 6 decimals). */
export async function startTestChain(opts: { payerFunds?: bigint } = {}): Promise<TestChain> {
  const chain = await startTokenChain({
    network: "base-sepolia",
    chainId: CHAIN_ID,
    token: { name: "USDC", version: "2", decimals: 6, transferMethod: "eip3009" },
    deploy: deployTestUsdc,
    payerFunds: opts.payerFunds ?? 1_000_000_000n,
  });
  const { client, asset, domain, payer, payTo, request } = chain;
  return {
    ...chain,
    async pay(input = {}) {
      const { account, requirements, ...rest } = input;
      const value = rest.value ?? requirements?.amount ?? 1000n;
      const payload = await signEip3009Payload(account ?? payer, { domain, to: payTo, ...rest, value });
      return request(payload, { amount: value, ...requirements });
    },
    nonceUsed: (from, nonce) => client.readContract({ address: asset, abi: erc20, functionName: "authorizationState", args: [from, nonce] }),
    ledgerKey(request) {
      const a = (request.payload as { authorization: { from: string; nonce: string } }).authorization;
      return eip3009LedgerKey(CHAIN_ID, asset, a.from, a.nonce);
    },
    submitElsewhere(request) {
      const p = request.payload as { signature: Hex; authorization: Record<string, string> };
      const a = p.authorization;
      const { v, r, s } = splitSignature(p.signature)!;
      const args = [a.from as Address, a.to as Address, BigInt(a.value!), BigInt(a.validAfter!), BigInt(a.validBefore!), a.nonce as Hex, v, r, s] as const;
      return chain.sendAsThirdParty(encodeFunctionData({ abi: submitAbi, args }));
    },
  };
}

export const PERMIT_CHAIN_ID = CHAIN_IDS.megaeth;
const permitAbi = parseAbi([
  "function balanceOf(address) view returns (uint256)",
  "function nonces(address) view returns (uint256)",
  "function allowance(address, address) view returns (uint256)",
  "function permit(address owner, address spender, uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s)",
]);

export interface PermitTestChain extends ChainFixture {
  /** A permit payment by `account` (default payer) of `value` (default 1000), as the mechanism receives it. */
  pay(input?: Partial<PermitPaymentInput> & { account?: LocalAccount; requirements?: Partial<Requirements> }): Promise<PaymentRequest>;
  nonces(owner: Address): Promise<bigint>;
  allowance(owner: Address, spender: Address): Promise<bigint>;
  mint(to: Address, amount: bigint): Promise<void>;
  /** Someone else (dev account 5) submits the payment's permit signature directly, with a high tip. */
  permitElsewhere(request: PaymentRequest): Promise<Hash>;
}

/** A local MegaETH stand-in: anvil with chain id 4326 and a USDm-like token (ERC-2612 only, 18 decimals). */
export async function startPermitTestChain(): Promise<PermitTestChain> {
  const chain = await startTokenChain({
    network: "megaeth",
    chainId: PERMIT_CHAIN_ID,
    token: { name: "MegaUSD", version: "1", decimals: 18, transferMethod: "permit" },
    deploy: deployPermitToken,
    payerFunds: 10n ** 24n,
    extra: (facilitator) => ({ assetTransferMethod: "erc2612-permit", spender: facilitator }),
  });
  const { client, asset, domain, facilitator, payer, request } = chain;
  const read = <T>(functionName: "nonces" | "allowance", args: readonly unknown[]) =>
    client.readContract({ address: asset, abi: permitAbi, functionName, args } as never) as Promise<T>;
  return {
    ...chain,
    async pay(input = {}) {
      const { account = payer, requirements, ...rest } = input;
      const value = rest.value ?? requirements?.amount ?? 1000n;
      const owner = rest.owner ?? account.address;
      const payload = await signPermitPayload(account, {
        domain,
        spender: facilitator,
        nonce: rest.nonce ?? (await read<bigint>("nonces", [owner])),
        deadline: rest.deadline ?? BigInt(Math.floor(Date.now() / 1000) + 600),
        ...rest,
        value,
      });
      return request(payload, { amount: value, ...requirements });
    },
    nonces: (owner) => read("nonces", [owner]),
    allowance: (owner, spender) => read("allowance", [owner, spender]),
    ledgerKey(request) {
      const p = (request.payload as { permit: { owner: string; nonce: string } }).permit;
      return permitLedgerKey(PERMIT_CHAIN_ID, asset, p.owner, BigInt(p.nonce));
    },
    permitElsewhere(req) {
      const p = req.payload as { signature: Hex; permit: Record<string, string> };
      const { v, r, s } = splitSignature(p.signature)!;
      const args = [p.permit.owner as Address, p.permit.spender as Address, BigInt(p.permit.value!), BigInt(p.permit.deadline!), v, r, s] as const;
      return chain.sendAsThirdParty(encodeFunctionData({ abi: permitAbi, functionName: "permit", args }));
    },
  };
}
