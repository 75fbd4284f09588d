/**
 * A TEERegistry for production (`pnpm tee-registry deploy`): deployed with the relayer holding the
 * registrar's and heartbeat relayer's roles, the first enclave measurements approved, and the admin
 * role handed to the admin (a multisig or cold key). The deployer is the admin only while it approves
 * those measurements: it then grants the role to `admin` and renounces its own, so the key that paid
 * for the deployment keeps no power over which enclaves count. Everything is read back before the
 * deployment is reported.
 */
import { getAddress, type Address, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { DEFAULT_ADMIN_ROLE, HEARTBEAT_ROLE, MeasurementStatus, REGISTRAR_ROLE } from "@facilitator/tee";
import { deployArtifact, type DeployArtifactOptions, type Deployed } from "./deploy.ts";
import { TeeRegistryClient } from "./tee-registry.ts";

export interface MeasurementApproval {
  teeType: number;
  measurement: Hex;
  /** The image's name for people (a release tag); in the event only. */
  label: string;
}

export interface DeployTeeRegistryOptions extends DeployArtifactOptions {
  /** Holds DEFAULT_ADMIN_ROLE at the end; defaults to the deployer. */
  admin?: Address;
  /** The facilitator's relayer key(s): REGISTRAR_ROLE and HEARTBEAT_ROLE. */
  relayers: readonly Address[];
  /** Approved before the admin role is handed over. */
  measurements?: readonly MeasurementApproval[];
}

export interface DeployedTeeRegistry extends Deployed {
  admin: Address;
  approvals: (MeasurementApproval & { transactionHash: Hex })[];
}

export async function deployTeeRegistry(o: DeployTeeRegistryOptions): Promise<DeployedTeeRegistry> {
  const deployer = privateKeyToAccount(o.deployerKey).address;
  const admin = o.admin ?? deployer;
  const deployed = await deployArtifact({ ...o, name: "TEERegistry", args: [deployer, [...o.relayers], [...o.relayers]] });
  const registry = new TeeRegistryClient({ rpcUrl: o.rpcUrl, chainId: deployed.chainId, address: deployed.address, writerKey: o.deployerKey, pollingIntervalMs: o.pollingIntervalMs, receiptTimeoutMs: 180_000 });
  const approvals: DeployedTeeRegistry["approvals"] = [];
  for (const m of o.measurements ?? []) {
    const { transactionHash } = await registry.write({ functionName: "approveMeasurement", args: [m.teeType, m.measurement, m.label] });
    approvals.push({ ...m, transactionHash });
  }
  if (admin.toLowerCase() !== deployer.toLowerCase()) {
    await registry.write({ functionName: "grantRole", args: [DEFAULT_ADMIN_ROLE, admin] });
    await registry.write({ functionName: "renounceRole", args: [DEFAULT_ADMIN_ROLE, deployer] });
  }
  const problems = await deploymentProblems(registry, { admin, deployer, relayers: o.relayers, measurements: o.measurements ?? [] });
  if (problems.length) throw new Error(`TEERegistry ${deployed.address} is not as intended: ${problems.join("; ")}`);
  return { ...deployed, address: getAddress(deployed.address), admin, approvals };
}

/** What the chain says differs from the intended deployment (empty when nothing does). */
async function deploymentProblems(
  registry: TeeRegistryClient,
  want: { admin: Address; deployer: Address; relayers: readonly Address[]; measurements: readonly MeasurementApproval[] },
): Promise<string[]> {
  const problems: string[] = [];
  const has = (role: Hex, who: Address) => registry.hasRole(role, who);
  if (!(await has(DEFAULT_ADMIN_ROLE, want.admin))) problems.push(`${want.admin} does not hold the admin role`);
  if (want.admin.toLowerCase() !== want.deployer.toLowerCase() && (await has(DEFAULT_ADMIN_ROLE, want.deployer))) problems.push(`the deployer ${want.deployer} still holds the admin role`);
  for (const r of want.relayers) {
    if (!(await has(REGISTRAR_ROLE, r))) problems.push(`relayer ${r} does not hold REGISTRAR_ROLE`);
    if (!(await has(HEARTBEAT_ROLE, r))) problems.push(`relayer ${r} does not hold HEARTBEAT_ROLE`);
  }
  for (const m of want.measurements) {
    if ((await registry.measurementStatus(m.teeType, m.measurement)).status !== MeasurementStatus.Approved) problems.push(`measurement ${m.measurement} is not approved`);
  }
  return problems;
}
