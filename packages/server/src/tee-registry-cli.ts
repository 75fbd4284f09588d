/**
 * `pnpm tee-registry`: the TEERegistry's deployment and its admin's later calls, straight on chain
 * (no facilitator is involved):
 *
 *   deploy      --rpc URL --relayer 0x..[,0x..] [--admin 0x..] [--chain-id N] [MEASUREMENT --label TEXT] [--dry-run]
 *               (DEPLOYER_PRIVATE_KEY) deploys, gives the relayer REGISTRAR_ROLE and HEARTBEAT_ROLE, approves
 *               MEASUREMENT, hands the admin role to --admin, and prints the facilitator's settings
 *   approve     --rpc URL --registry 0x.. MEASUREMENT [--label TEXT] [--calldata]
 *   revoke      --rpc URL --registry 0x.. MEASUREMENT [--calldata]       (final: every TEE of that image stops)
 *   revoke-tee  --rpc URL --registry 0x.. --tee-id 0x.. [--calldata]     (final)
 *   status      --rpc URL --registry 0x.. (MEASUREMENT | --tee-id 0x..)
 *
 * MEASUREMENT is --measurement 0x<32 bytes>, --pcr0 --pcr1 --pcr2 (48 bytes each, hex as nitro-cli prints
 * them), or --pcrs FILE (nitro-cli build-enclave's or describe-eif's JSON); --tee-type aws-nitro by default.
 * approve, revoke and revoke-tee are signed with REGISTRY_ADMIN_PRIVATE_KEY, or printed for a multisig
 * with --calldata. Keys come from the environment only (arguments show up in `ps` and shell history) and
 * are never printed. Exit 0 done, 1 refused or failed (the reason is printed), 2 usage.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createPublicClient, encodeFunctionData, getAddress, http, isAddress, type Address, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { loadArtifact, type Artifact } from "@facilitator/devnet";
import { deployTeeRegistry, RegistryError, TeeRegistryClient, type RegistryCall } from "@facilitator/inference";
import { AWS_NITRO_ROOT_SHA256, keySchemeName, MeasurementStatus, TEE_REGISTRY_ABI, teeTypeName } from "@facilitator/tee";
import { parseMeasurementInput, parseTeeType, type MeasurementInput } from "./tee-registry-input.ts";

const USAGE = `Usage:
  pnpm tee-registry deploy --rpc URL --relayer 0x..[,0x..] [--admin 0x..] [--chain-id N] [MEASUREMENT --label TEXT] [--dry-run]
  pnpm tee-registry approve --rpc URL --registry 0x.. MEASUREMENT [--label TEXT] [--calldata]
  pnpm tee-registry revoke --rpc URL --registry 0x.. MEASUREMENT [--calldata]
  pnpm tee-registry revoke-tee --rpc URL --registry 0x.. --tee-id 0x.. [--calldata]
  pnpm tee-registry status --rpc URL --registry 0x.. (MEASUREMENT | --tee-id 0x..)
MEASUREMENT: --measurement 0x.. | --pcr0 HEX --pcr1 HEX --pcr2 HEX | --pcrs FILE   [--tee-type aws-nitro]
Keys: DEPLOYER_PRIVATE_KEY (deploy), REGISTRY_ADMIN_PRIVATE_KEY (approve, revoke, revoke-tee).`;

export interface TeeRegistryCliIo {
  env: Record<string, string | undefined>;
  readFile: (path: string) => string;
  out: (line: string) => void;
  err: (line: string) => void;
  /** The compiled TEERegistry (default: Hardhat's artifact, `pnpm compile`). */
  artifact?: () => Artifact;
  pollingIntervalMs?: number;
}

const KEY = /^0x[0-9a-fA-F]{64}$/;
const STRING_OPTIONS = ["rpc", "relayer", "admin", "chain-id", "registry", "tee-id", "tee-type", "measurement", "pcr0", "pcr1", "pcr2", "pcrs", "label"];

class Usage extends Error {}

export async function teeRegistryCli(argv: string[], io: TeeRegistryCliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        ...Object.fromEntries(STRING_OPTIONS.map((name) => [name, { type: "string" as const }])),
        "dry-run": { type: "boolean" },
        calldata: { type: "boolean" },
      },
    });
  } catch (e) {
    io.err(`${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const v = parsed.values as Record<string, string | boolean | undefined>;
  const str = (name: string) => (typeof v[name] === "string" ? (v[name] as string) : undefined);
  const [command, ...extra] = parsed.positionals;
  try {
    if (extra.length || !command) throw new Usage(command ? `unexpected ${extra.join(" ")}` : "a command is needed");
    const rpc = str("rpc");
    if (!rpc) throw new Usage("--rpc URL is required");
    const teeType = parseTeeType(str("tee-type"));
    if (!teeType.ok) throw new Usage(teeType.error);
    const measurement = () => {
      const m = parseMeasurementInput({ measurement: str("measurement"), pcr0: str("pcr0"), pcr1: str("pcr1"), pcr2: str("pcr2"), pcrsJson: str("pcrs") && io.readFile(str("pcrs")!) });
      if (!m.ok) throw new Usage(m.error);
      return m;
    };
    const chainId = await createPublicClient({ transport: http(rpc) }).getChainId();
    if (str("chain-id") && Number(str("chain-id")) !== chainId) throw new Error(`the node at --rpc is chain ${chainId}, not ${str("chain-id")}`);

    if (command === "deploy") return await deploy(io, { rpc, chainId, teeType: teeType.value, measurement: hasMeasurement(v) ? measurement() : undefined, relayer: str("relayer"), admin: str("admin"), label: str("label") ?? "", dryRun: v["dry-run"] === true });

    const registryAddress = str("registry");
    if (!registryAddress || !isAddress(registryAddress, { strict: false })) throw new Usage("--registry 0x.. (the TEERegistry's address) is required");
    const teeId = str("tee-id");
    if (teeId !== undefined && !/^0x[0-9a-fA-F]{64}$/.test(teeId)) throw new Usage("--tee-id must be 0x and 64 hex digits");
    const registry = { rpc, chainId, address: getAddress(registryAddress) };
    if (command === "status") return await status(io, registry, teeType.value, teeId ? { teeId: teeId as Hex } : { measurement: measurement() });

    let call: RegistryCall;
    if (command === "approve") call = { functionName: "approveMeasurement", args: [teeType.value, measurement().hash, str("label") ?? ""] };
    else if (command === "revoke") call = { functionName: "revokeMeasurement", args: [teeType.value, measurement().hash] };
    else if (command === "revoke-tee" && teeId) call = { functionName: "revokeTee", args: [teeId as Hex] };
    else throw new Usage(command === "revoke-tee" ? "revoke-tee needs --tee-id 0x.." : `unknown command ${command}`);
    return await adminCall(io, registry, call, v.calldata === true);
  } catch (e) {
    if (e instanceof Usage) {
      io.err(`${e.message}\n\n${USAGE}`);
      return 2;
    }
    io.err(e instanceof RegistryError ? `refused: ${e.reason}: ${e.message}` : `error: ${(e as Error).message}`);
    return 1;
  }
}

const hasMeasurement = (v: Record<string, unknown>) => ["measurement", "pcr0", "pcr1", "pcr2", "pcrs"].some((k) => v[k] !== undefined);

function envKey(io: TeeRegistryCliIo, name: string): Hex {
  const key = io.env[name]?.trim();
  if (!key || !KEY.test(key)) throw new Usage(`set ${name} to the 32-byte hex private key (value not shown)`);
  return key as Hex;
}

async function deploy(
  io: TeeRegistryCliIo,
  o: { rpc: string; chainId: number; teeType: number; measurement?: MeasurementInput; relayer?: string; admin?: string; label: string; dryRun: boolean },
): Promise<number> {
  const relayers = (o.relayer ?? "").split(",").map((a) => a.trim()).filter(Boolean);
  if (relayers.length === 0) throw new Usage("--relayer 0x.. (the facilitator's relayer address) is required");
  for (const a of [...relayers, ...(o.admin ? [o.admin] : [])]) if (!isAddress(a, { strict: false })) throw new Usage(`${a} is not an address`);
  const key = envKey(io, "DEPLOYER_PRIVATE_KEY");
  const deployer = privateKeyToAccount(key).address;
  const admin = o.admin ? getAddress(o.admin) : deployer;
  const measurements = o.measurement ? [{ teeType: o.teeType, measurement: o.measurement.hash, label: o.label }] : [];
  io.out(`chain ${o.chainId}, deployer ${deployer}, admin ${admin}, relayer(s) ${relayers.map((a) => getAddress(a)).join(", ")}`);
  for (const m of measurements) io.out(`approving ${teeTypeName(m.teeType)} measurement ${m.measurement}${m.label ? ` "${m.label}"` : ""}`);
  if (!measurements.length) io.out("no measurement given: no enclave can register until the admin approves one (pnpm tee-registry approve)");
  if (o.dryRun) return 0;
  const artifact = (io.artifact ?? (() => loadArtifact("TEERegistry")))();
  const d = await deployTeeRegistry({ rpcUrl: o.rpc, chainId: o.chainId, deployerKey: key, admin, relayers: relayers.map((a) => getAddress(a)), measurements, artifact, pollingIntervalMs: io.pollingIntervalMs });
  io.out(`TEERegistry deployed at ${d.address} (tx ${d.transactionHash}, block ${d.blockNumber})`);
  for (const a of d.approvals) io.out(`  approved ${a.measurement} (tx ${a.transactionHash})`);
  if (admin !== deployer) io.out(`  admin role handed to ${admin}; the deployer renounced its own`);
  io.out("");
  io.out("# The facilitator (on the relay's chain, SETTLEMENT_NETWORK; its RELAYER_PRIVATE_KEY must be a relayer above):");
  io.out(`TEE_REGISTRY_ADDRESS=${d.address}`);
  io.out(`# TEE_ATTESTATION_ROOTS unset: the AWS Nitro root (SHA-256 ${AWS_NITRO_ROOT_SHA256})`);
  io.out(`# Auditors: pnpm auditor ... --tee-registry ${d.address} (or AUDIT_TEE_REGISTRY)`);
  return 0;
}

type RegistryTarget = { rpc: string; chainId: number; address: Address };

async function adminCall(io: TeeRegistryCliIo, r: RegistryTarget, call: RegistryCall, calldataOnly: boolean): Promise<number> {
  if (calldataOnly) {
    // For a multisig admin: the transaction to propose, nothing is sent.
    io.out(`to: ${r.address}`);
    io.out(`data: ${encodeFunctionData({ abi: TEE_REGISTRY_ABI, ...call } as never)}`);
    io.out(`call: ${call.functionName}(${call.args.map((a) => JSON.stringify(typeof a === "bigint" ? a.toString() : a)).join(", ")})`);
    return 0;
  }
  const registry = new TeeRegistryClient({ rpcUrl: r.rpc, chainId: r.chainId, address: r.address, writerKey: envKey(io, "REGISTRY_ADMIN_PRIVATE_KEY"), pollingIntervalMs: io.pollingIntervalMs, receiptTimeoutMs: 180_000 });
  const sent = await registry.write(call);
  io.out(`${call.functionName}: done in tx ${sent.transactionHash} (block ${sent.blockNumber})`);
  return 0;
}

const STATUS = ["not approved", "approved", "revoked"];

async function status(io: TeeRegistryCliIo, r: RegistryTarget, teeType: number, what: { teeId: Hex } | { measurement: MeasurementInput }): Promise<number> {
  const registry = new TeeRegistryClient({ rpcUrl: r.rpc, chainId: r.chainId, address: r.address });
  if ("measurement" in what) {
    const m = await registry.measurementStatus(teeType, what.measurement.hash);
    const blocks = [m.approvedBlock ? `approved at block ${m.approvedBlock}` : "", m.revokedBlock ? `revoked at block ${m.revokedBlock}` : ""].filter(Boolean).join(", ");
    io.out(`${teeTypeName(teeType)} measurement ${what.measurement.hash}: ${STATUS[m.status] ?? `status ${m.status}`}${blocks ? ` (${blocks})` : ""}`);
    return m.status === MeasurementStatus.Approved ? 0 : 1;
  }
  const tee = await registry.getTee(what.teeId);
  if (!tee) {
    io.out(`TEE ${what.teeId}: not registered`);
    return 1;
  }
  const m = await registry.measurementStatus(tee.teeType, tee.measurement);
  io.out(`TEE ${what.teeId}`);
  io.out(`  type ${teeTypeName(tee.teeType)}, key ${keySchemeName(tee.scheme) ?? `scheme ${tee.scheme}`}`);
  io.out(`  measurement ${tee.measurement}: ${STATUS[m.status] ?? `status ${m.status}`}`);
  io.out(`  registered at block ${tee.registeredBlock}${tee.revokedBlock ? `, revoked at block ${tee.revokedBlock}` : ""}; last heartbeat ${tee.lastHeartbeat || "none"}`);
  io.out(`  attestation document: Walrus blob ${tee.attestationBlobId}, keccak256 ${tee.attestationHash}`);
  if (tee.endpoint) io.out(`  endpoint ${tee.endpoint}, paid at ${tee.paymentAddress}`);
  return tee.revokedBlock === 0n && m.status === MeasurementStatus.Approved ? 0 : 1;
}

const invokedDirectly = process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1];
if (invokedDirectly) {
  teeRegistryCli(process.argv.slice(2), {
    env: process.env,
    readFile: (path) => readFileSync(path, "utf8"),
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
  }).then((code) => process.exit(code));
}
