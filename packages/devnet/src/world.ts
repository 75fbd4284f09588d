/**
 * The local world: the chains, tokens, funded payers and services that the embedded default and the
 * end-to-end tests share, described by `.devnet/devnet.json` (architecture.md, "The devnet contract").
 */
import { mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { getAddress, type Address, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { NetworkRegistry, type NetworkOverride, type TransferMethod } from "@facilitator/core";
import { devKey, DevRole } from "./accounts.ts";
import { startAnvil, type AnvilNode } from "./anvil.ts";
import { deployPermitToken, deployTestUsdc, mintTokens } from "./deploy.ts";
import { installPermit2Contracts, type Permit2Contracts } from "./permit2.ts";
import { repoRoot } from "./paths.ts";
import { relocateContract } from "./relocate.ts";

export interface EvmWorldNetwork {
  network: string;
  caip2: string;
  chainId: number;
  rpcUrl: string;
  asset: { address: Address; name: string; version: string; decimals: number; transferMethod: TransferMethod };
  facilitatorAddress: Address;
  payer: { address: Address; privateKey: Hex };
  payTo: Address;
  /**
   * Permit2, x402ExactPermit2Proxy and x402UptoPermit2Proxy, at their canonical addresses (dev-only
   * fixtures placed with anvil_setCode; see permit2.ts).
   */
  permit2: Permit2Contracts;
}

export interface DevnetJson {
  facilitatorUrl: string;
  networks: Record<string, EvmWorldNetwork | Record<string, unknown>>;
  settlementRelay?: { network: string; address: Address };
  walrus?: { publisherUrl: string; aggregatorUrl: string };
  inferenceApiKey?: string;
  /** Opens POST /tees and /tees/nonce (OPERATOR_API_KEY). */
  operatorApiKey?: string;
  /** The secp256k1 TEE (TEE attestation v2, EIP-712), registered in `teeRegistry`. */
  tee?: { teeId: Hex; privateKey: Hex; address: Address };
  /** The RSA TEE that signs as OpenGradient's tee-gateway does (RSA-PSS); its key as PKCS#8 PEM. */
  gatewayTee?: { teeId: Hex; privateKeyPem: string };
  /** The TEERegistry both TEEs are registered in, the test root their attestations chain to, and their approved measurement. */
  teeRegistry?: { network: string; address: Address; attestationRootPem: string; measurement: Hex };
}

/**
 * The chain id each local EVM chain runs under: the real one of the network it stands in for, so v1
 * clients that derive the chain id from the network's name work unchanged.
 */
export const CHAIN_IDS = { "base-sepolia": 84532, "og-evm": 10740, megaeth: 4326 } as const;

/** The EVM chains of the local world: real chain ids, tokens shaped like the real ones. */
export const EVM_WORLD_CHAINS = [
  { network: "base-sepolia", chainId: CHAIN_IDS["base-sepolia"], name: "USDC", version: "2", decimals: 6, transferMethod: "eip3009" },
  { network: "og-evm", chainId: CHAIN_IDS["og-evm"], name: "OUSDC", version: "2", decimals: 6, transferMethod: "eip3009" },
  { network: "megaeth", chainId: CHAIN_IDS.megaeth, name: "MegaUSD", version: "1", decimals: 18, transferMethod: "permit" },
] as const satisfies readonly { network: string; chainId: number; name: string; version: string; decimals: number; transferMethod: TransferMethod }[];

const BUILT_IN = new NetworkRegistry();

/** Accounts outside anvil's ten funded ones, so the payer holds tokens and no gas money. */
const PAYER_INDEX = 20;
const PAY_TO_INDEX = 21;

export interface EvmWorld {
  networks: Record<string, EvmWorldNetwork>;
  nodes: Record<string, AnvilNode>;
  facilitatorKeys: Hex[];
  deployerKey: Hex;
  stop(): Promise<void>;
}

export async function startEvmWorld(opts: { networks?: readonly string[]; tokensPerPayer?: bigint } = {}): Promise<EvmWorld> {
  const chosen = EVM_WORLD_CHAINS.filter((c) => !opts.networks || opts.networks.includes(c.network));
  const deployerKey = devKey(DevRole.deployer);
  const facilitatorKeys = [devKey(DevRole.facilitator), devKey(DevRole.facilitator2)];
  const payerKey = devKey(PAYER_INDEX);
  const payer = privateKeyToAccount(payerKey).address;
  const payTo = privateKeyToAccount(devKey(PAY_TO_INDEX)).address;
  const nodes: Record<string, AnvilNode> = {};
  const networks: Record<string, EvmWorldNetwork> = {};
  try {
    await Promise.all(
      chosen.map(async (c) => {
        const node = await startAnvil({ chainId: c.chainId });
        nodes[c.network] = node;
        const target = { rpcUrl: node.rpcUrl, chainId: c.chainId, deployerKey };
        const permit2 = await installPermit2Contracts(target);
        const deploy = c.transferMethod === "permit" ? deployPermitToken : deployTestUsdc;
        const deployed = await deploy({ ...target, name: c.name, version: c.version, decimals: c.decimals });
        // The token sits where the real one does, so the official clients' default asset tables name it.
        const token = getAddress(BUILT_IN.get(c.network).asset.address);
        await relocateContract(node.rpcUrl, deployed, token);
        await mintTokens({ ...target, token, to: payer, amount: (opts.tokensPerPayer ?? 1_000_000n) * 10n ** BigInt(c.decimals) });
        networks[c.network] = {
          network: c.network,
          caip2: `eip155:${c.chainId}`,
          chainId: c.chainId,
          rpcUrl: node.rpcUrl,
          asset: { address: token, name: c.name, version: c.version, decimals: c.decimals, transferMethod: c.transferMethod },
          facilitatorAddress: privateKeyToAccount(facilitatorKeys[0]!).address,
          payer: { address: payer, privateKey: payerKey },
          payTo,
          permit2,
        };
      }),
    );
  } catch (e) {
    await Promise.all(Object.values(nodes).map((n) => n.stop()));
    throw e;
  }
  return {
    networks,
    nodes,
    facilitatorKeys,
    deployerKey,
    async stop() {
      await Promise.all(Object.values(nodes).map((n) => n.stop()));
    },
  };
}

/** Registry overrides that point the built-in networks at the local world. */
export function evmWorldOverrides(world: Pick<EvmWorld, "networks">): NetworkOverride[] {
  return Object.values(world.networks).map((n) => ({ name: n.network, rpcUrl: n.rpcUrl, asset: n.asset }));
}

export const devnetJsonPath = join(repoRoot, ".devnet", "devnet.json");

export function writeDevnetJson(json: DevnetJson, path = devnetJsonPath): void {
  mkdirSync(dirname(path), { recursive: true });
  // Written aside and renamed, so a reader polling for the file never sees it half written.
  const partial = `${path}.${process.pid}.partial`;
  writeFileSync(partial, JSON.stringify(json, null, 2) + "\n", { mode: 0o600 });
  renameSync(partial, path);
}

export function removeDevnetJson(path = devnetJsonPath): void {
  rmSync(path, { force: true });
}
