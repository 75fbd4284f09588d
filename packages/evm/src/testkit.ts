/** Local chains for this package's tests: base-sepolia (84532, TestUSDC) and MegaETH (4326, USDm-like permit token). Test-only. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer, type Server } from "node:http";
import type { NetworkInfo, PaymentRequest, Requirements, SettlementLedger } from "@facilitator/core";
import { deployPermitToken, deployTestUsdc, devKey, DevRole, freePort, mintTokens, startAnvil, type AnvilNode } from "@facilitator/devnet";
import { LmdbLedger } from "@facilitator/ledger";
import { createPublicClient, encodeFunctionData, http, parseAbi, parseGwei, type Address, type Hash, type Hex, type LocalAccount, type PublicClient } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import type { TokenDomain } from "./eip3009.ts";
import { createEvmExactMechanism, type EvmExactMechanism } from "./mechanism.ts";
import { signEip3009Payload, type Eip3009PaymentInput } from "./eip3009-client.ts";
import { signPermitPayload, type PermitPaymentInput } from "./permit-client.ts";
import { splitSignature } from "./signature.ts";

export const CHAIN_ID = 84532;
const erc20 = parseAbi([
  "function balanceOf(address) view returns (uint256)",
  "function authorizationState(address, bytes32) view returns (bool)",
]);

/** What every local test chain offers, whatever its token's transfer method. */
interface ChainFixture {
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
  stop(): Promise<void>;
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

export async function startTestChain(opts: { payerFunds?: bigint } = {}): Promise<TestChain> {
  const anvil = await startAnvil({ chainId: CHAIN_ID });
  const deployerKey = devKey(DevRole.deployer);
  const facilitatorKey = devKey(DevRole.facilitator);
  const payer = privateKeyToAccount(devKey(20));
  const payTo = privateKeyToAccount(devKey(DevRole.payTo)).address;
  const target = { rpcUrl: anvil.rpcUrl, chainId: CHAIN_ID, deployerKey };
  const asset = await deployTestUsdc({ ...target, name: "USDC", version: "2", decimals: 6 });
  await mintTokens({ ...target, token: asset, to: payer.address, amount: opts.payerFunds ?? 1_000_000_000n });
  const client = createPublicClient({ transport: http(anvil.rpcUrl), cacheTime: 0 }) as PublicClient;
  const network: NetworkInfo = {
    name: "base-sepolia",
    caip2: `eip155:${CHAIN_ID}`,
    family: "evm",
    chainId: CHAIN_ID,
    rpcUrl: anvil.rpcUrl,
    asset: { address: asset, decimals: 6, name: "USDC", version: "2", transferMethod: "eip3009" },
    extraAssets: [{ address: ACCEPTED_ASSET_WITHOUT_CODE, decimals: 6, name: "USDC", version: "2", transferMethod: "eip3009" }],
    testnet: true,
  };
  const domain: TokenDomain = { name: "USDC", version: "2", chainId: CHAIN_ID, verifyingContract: asset };
  const request = (payload: object, requirements: Partial<Requirements> = {}): PaymentRequest => ({
    x402Version: 2,
    scheme: "exact",
    network,
    networkId: network.caip2,
    requirements: { scheme: "exact", amount: 1000n, asset, payTo, maxTimeoutSeconds: 60, extra: { name: "USDC", version: "2" }, ...requirements },
    payload: payload as Record<string, unknown>,
  });
  return {
    anvil, network, asset, domain, client, deployerKey, facilitatorKey, payer, payTo,
    facilitator: privateKeyToAccount(facilitatorKey).address,
    async pay(input = {}) {
      const { account, requirements, ...rest } = input;
      const value = rest.value ?? requirements?.amount ?? 1000n;
      const payload = await signEip3009Payload(account ?? payer, { domain, to: payTo, ...rest, value });
      return request(payload, { amount: value, ...requirements });
    },
    request,
    balanceOf: (owner, token = asset) => client.readContract({ address: token, abi: erc20, functionName: "balanceOf", args: [owner] }),
    nonceUsed: (from, nonce) => client.readContract({ address: asset, abi: erc20, functionName: "authorizationState", args: [from, nonce] }),
    minedCount: (address = privateKeyToAccount(facilitatorKey).address) => client.getTransactionCount({ address, blockTag: "latest" }),
    rpc: (method, params = []) => client.request({ method: method as never, params: params as never }),
    async submitElsewhere(request) {
      const p = request.payload as { signature: Hex; authorization: Record<string, string> };
      const a = p.authorization;
      const { v, r, s } = splitSignature(p.signature)!;
      const args = [a.from as Address, a.to as Address, BigInt(a.value!), BigInt(a.validAfter!), BigInt(a.validBefore!), a.nonce as Hex, v, r, s] as const;
      const tx = {
        from: privateKeyToAccount(devKey(5)).address,
        to: asset,
        data: encodeFunctionData({ abi: submitAbi, args }),
        maxPriorityFeePerGas: `0x${parseGwei("50").toString(16)}`,
        maxFeePerGas: `0x${parseGwei("100").toString(16)}`,
      };
      return (await client.request({ method: "eth_sendTransaction" as never, params: [tx] as never })) as Hash;
    },
    stop: () => anvil.stop(),
  };
}

/** An LmdbLedger in a temporary directory, removed by `dispose`. */
/** The mechanism the unit suites test: one chain, its facilitator key, short local bounds. */
export function testMechanism(chain: { network: NetworkInfo; facilitatorKey: Hex }, ledger: SettlementLedger): EvmExactMechanism {
  return createEvmExactMechanism({
    networks: [chain.network],
    signers: [chain.facilitatorKey],
    ledger,
    receiptTimeoutMs: 5000,
    pollingIntervalMs: 20,
  });
}

export function tempLedger(): { ledger: LmdbLedger; dispose(): Promise<void> } {
  const dir = mkdtempSync(join(tmpdir(), "evm-ledger-"));
  const ledger = new LmdbLedger(dir);
  return {
    ledger,
    async dispose() {
      await ledger.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * An HTTP proxy in front of a JSON-RPC node that records each HTTP request's JSON-RPC methods, and can
 * inject transport faults: "refuse" answers 503 without forwarding; "lose-answer" forwards, then answers 503.
 */
export type RpcFault = "refuse" | "lose-answer";

export async function rpcRecorder(
  target: string,
  fault?: (methods: string[]) => RpcFault | undefined,
): Promise<{ url: string; requests: string[][]; close(): Promise<void> }> {
  const requests: string[][] = [];
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString();
    const parsed = JSON.parse(body);
    const methods = (Array.isArray(parsed) ? parsed : [parsed]).map((r: { method: string }) => r.method);
    requests.push(methods);
    const injected = fault?.(methods);
    if (injected === "refuse") return void res.writeHead(503).end("unavailable");
    const upstream = await fetch(target, { method: "POST", headers: { "content-type": "application/json" }, body });
    const text = await upstream.text();
    if (injected === "lose-answer") return void res.writeHead(503).end("unavailable");
    res.writeHead(upstream.status, { "content-type": "application/json" });
    res.end(text);
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${port}`, requests, close: () => new Promise((r) => server.close(() => r())) };
}

export const PERMIT_CHAIN_ID = 4326;
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
  const anvil = await startAnvil({ chainId: PERMIT_CHAIN_ID });
  const deployerKey = devKey(DevRole.deployer);
  const facilitatorKey = devKey(DevRole.facilitator);
  const facilitator = privateKeyToAccount(facilitatorKey).address;
  const payer = privateKeyToAccount(devKey(20));
  const payTo = privateKeyToAccount(devKey(DevRole.payTo)).address;
  const target = { rpcUrl: anvil.rpcUrl, chainId: PERMIT_CHAIN_ID, deployerKey };
  const asset = await deployPermitToken({ ...target, name: "MegaUSD", version: "1", decimals: 18 });
  const mint = (to: Address, amount: bigint) => mintTokens({ ...target, token: asset, to, amount });
  await mint(payer.address, 10n ** 24n);
  const client = createPublicClient({ transport: http(anvil.rpcUrl), cacheTime: 0 }) as PublicClient;
  const network: NetworkInfo = {
    name: "megaeth",
    caip2: `eip155:${PERMIT_CHAIN_ID}`,
    family: "evm",
    chainId: PERMIT_CHAIN_ID,
    rpcUrl: anvil.rpcUrl,
    asset: { address: asset, decimals: 18, name: "MegaUSD", version: "1", transferMethod: "permit" },
    extraAssets: [{ address: ACCEPTED_ASSET_WITHOUT_CODE, decimals: 18, name: "MegaUSD", version: "1", transferMethod: "permit" }],
    testnet: true,
  };
  const domain: TokenDomain = { name: "MegaUSD", version: "1", chainId: PERMIT_CHAIN_ID, verifyingContract: asset };
  const read = <T>(functionName: "balanceOf" | "nonces" | "allowance", args: readonly unknown[]) =>
    client.readContract({ address: asset, abi: permitAbi, functionName, args } as never) as Promise<T>;
  const request = (payload: object, requirements: Partial<Requirements> = {}): PaymentRequest => ({
    x402Version: 2,
    scheme: "exact",
    network,
    networkId: network.caip2,
    requirements: {
      scheme: "exact", amount: 1000n, asset, payTo, maxTimeoutSeconds: 60,
      extra: { name: "MegaUSD", version: "1", assetTransferMethod: "erc2612-permit", spender: facilitator },
      ...requirements,
    },
    payload: payload as Record<string, unknown>,
  });
  return {
    anvil, network, asset, domain, client, deployerKey, facilitatorKey, facilitator, payer, payTo,
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
    request,
    balanceOf: (owner, token = asset) => client.readContract({ address: token, abi: permitAbi, functionName: "balanceOf", args: [owner] }),
    nonces: (owner) => read("nonces", [owner]),
    allowance: (owner, spender) => read("allowance", [owner, spender]),
    mint,
    minedCount: (address = facilitator) => client.getTransactionCount({ address, blockTag: "latest" }),
    rpc: (method, params = []) => client.request({ method: method as never, params: params as never }),
    async permitElsewhere(req) {
      const p = req.payload as { signature: Hex; permit: Record<string, string> };
      const { v, r, s } = splitSignature(p.signature)!;
      const args = [p.permit.owner as Address, p.permit.spender as Address, BigInt(p.permit.value!), BigInt(p.permit.deadline!), v, r, s] as const;
      const tx = {
        from: privateKeyToAccount(devKey(DevRole.thirdParty)).address,
        to: asset,
        data: encodeFunctionData({ abi: permitAbi, functionName: "permit", args }),
        maxPriorityFeePerGas: `0x${parseGwei("50").toString(16)}`,
        maxFeePerGas: `0x${parseGwei("100").toString(16)}`,
      };
      return (await client.request({ method: "eth_sendTransaction" as never, params: [tx] as never })) as Hash;
    },
    stop: () => anvil.stop(),
  };
}
