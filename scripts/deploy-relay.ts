/**
 * Deploys SettlementRelay to any EVM network (no Hardhat network config needed).
 *
 * Usage (from the repository root):
 *   pnpm compile
 *   DEPLOYER_PRIVATE_KEY=0x... pnpm exec tsx scripts/deploy-relay.ts \
 *     --rpc https://sepolia.base.org \
 *     --relayer 0xRelayerAddress[,0xAnotherRelayer] \
 *     [--admin 0xAdminAddress]      # holds DEFAULT_ADMIN_ROLE (grants/revokes relayers); default: the deployer
 *     [--chain-id 84532]            # checked against the node's; read from the node when omitted
 *     [--dry-run]                   # print what would be deployed, send nothing
 *
 * The key is read from the environment only (never from arguments, which show up in `ps` and shell
 * history) and is never printed. Use a multisig or a cold key as admin on real networks, and a relayer
 * key that holds only gas money. On success it prints the relay address and the settings for the
 * facilitator: X402_SETTLEMENT_CONTRACT and SETTLEMENT_RELAY_FROM_BLOCK (SETTLEMENT_NETWORK is the network you deployed to).
 */
import { parseArgs } from "node:util";
import { createPublicClient, getAddress, http, isAddress, type Address, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { loadArtifact } from "@facilitator/devnet";
import { deploySettlementRelay, RELAYER_ROLE, SETTLEMENT_RELAY_ABI } from "@facilitator/inference";

function fail(message: string): never {
  console.error(`deploy-relay: ${message}`);
  process.exit(1);
}

const { values } = parseArgs({
  options: {
    rpc: { type: "string" },
    relayer: { type: "string" },
    admin: { type: "string" },
    "chain-id": { type: "string" },
    "dry-run": { type: "boolean", default: false },
  },
});

const key = process.env.DEPLOYER_PRIVATE_KEY?.trim();
if (!key || !/^0x[0-9a-fA-F]{64}$/.test(key)) fail("set DEPLOYER_PRIVATE_KEY to the deployer's 32-byte hex private key");
if (!values.rpc) fail("--rpc <url> is required");
const relayers = (values.relayer ?? "").split(",").map((a) => a.trim()).filter(Boolean);
if (relayers.length === 0) fail("--relayer <address>[,<address>] is required");
for (const a of [...relayers, ...(values.admin ? [values.admin] : [])]) if (!isAddress(a, { strict: false })) fail(`${a} is not an address`);

const deployer = privateKeyToAccount(key as Hex);
const admin = values.admin ? getAddress(values.admin) : deployer.address;
const relayerAddresses = relayers.map((a) => getAddress(a)) as Address[];
const client = createPublicClient({ transport: http(values.rpc) });
const chainId = await client.getChainId();
if (values["chain-id"] && Number(values["chain-id"]) !== chainId) fail(`the node at --rpc is chain ${chainId}, not ${values["chain-id"]}`);

console.log(`chain ${chainId}, deployer ${deployer.address}, admin ${admin}, relayers ${relayerAddresses.join(", ")}`);
if (values["dry-run"]) process.exit(0);

const deployed = await deploySettlementRelay({
  rpcUrl: values.rpc,
  chainId,
  deployerKey: key as Hex,
  admin,
  relayers: relayerAddresses,
  artifact: loadArtifact("SettlementRelay"),
});
for (const r of relayerAddresses) {
  const ok = await client.readContract({ address: deployed.address, abi: SETTLEMENT_RELAY_ABI, functionName: "hasRole", args: [RELAYER_ROLE, r] });
  if (!ok) fail(`relayer ${r} does not hold RELAYER_ROLE on ${deployed.address}`);
}
console.log(`SettlementRelay deployed at ${deployed.address} (tx ${deployed.transactionHash}, block ${deployed.blockNumber})`);
console.log(`X402_SETTLEMENT_CONTRACT=${deployed.address}`);
console.log(`SETTLEMENT_RELAY_FROM_BLOCK=${deployed.blockNumber}`);
