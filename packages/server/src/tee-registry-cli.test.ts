/**
 * `pnpm tee-registry` against anvil: the production deployment (roles, the first approved measurement,
 * the admin role handed over and renounced by the deployer, the settings printed), and the admin's
 * later calls (approve, revoke, revoke-tee, status, --calldata for a multisig), each refusal named.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPublicClient, decodeFunctionData, http, type Address, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { devKey, DevRole, startAnvil, type AnvilNode } from "@facilitator/devnet";
import { DEFAULT_ADMIN_ROLE, HEARTBEAT_ROLE, measurementOf, REGISTRAR_ROLE, TEE_REGISTRY_ABI, testPcrs } from "@facilitator/tee";
import { teeRegistryCli } from "./tee-registry-cli.ts";

const DEPLOYER = devKey(DevRole.deployer);
const ADMIN = devKey(DevRole.thirdParty);
const RELAYER = privateKeyToAccount(devKey(DevRole.relayer)).address;
const address = (key: Hex) => privateKeyToAccount(key).address;
const image = testPcrs("release-1");
const release1 = measurementOf(image[0], image[1], image[2]);
const release2 = measurementOf(...(Object.values(testPcrs("release-2")) as [Hex, Hex, Hex]));
const files: Record<string, string> = { "build.json": JSON.stringify({ Measurements: { HashAlgorithm: "Sha384 { ... }", PCR0: image[0].slice(2), PCR1: image[1].slice(2), PCR2: image[2].slice(2) } }) };

let anvil: AnvilNode;
let registry: Address;

async function run(argv: string[], env: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await teeRegistryCli(argv, { env, readFile: (p) => files[p]!, out: (l) => out.push(l), err: (l) => err.push(l), pollingIntervalMs: 50 });
  return { code, out: out.join("\n"), err: err.join("\n") };
}
const read = <T>(functionName: string, args: readonly unknown[]) =>
  createPublicClient({ transport: http(anvil.rpcUrl) }).readContract({ address: registry, abi: TEE_REGISTRY_ABI, functionName, args } as never) as Promise<T>;

beforeAll(async () => {
  anvil = await startAnvil({ chainId: 84532 });
});

afterAll(async () => {
  await anvil?.stop();
});

describe("pnpm tee-registry deploy", () => {
  it("deploys, gives the relayer its roles, approves the image and hands the admin role over", async () => {
    const r = await run(["deploy", "--rpc", anvil.rpcUrl, "--relayer", RELAYER, "--admin", address(ADMIN), "--pcrs", "build.json", "--label", "release-1"], { DEPLOYER_PRIVATE_KEY: DEPLOYER });
    expect(r.code, r.err).toBe(0);
    registry = r.out.match(/^TEE_REGISTRY_ADDRESS=(0x[0-9a-fA-F]{40})$/m)![1] as Address;
    expect(r.out).toContain(`approved ${release1.hash}`);
    expect(r.out).toContain("the deployer renounced its own");
    expect(r.out).not.toContain(DEPLOYER.slice(2));
    expect(await read("hasRole", [REGISTRAR_ROLE, RELAYER])).toBe(true);
    expect(await read("hasRole", [HEARTBEAT_ROLE, RELAYER])).toBe(true);
    expect(await read("hasRole", [DEFAULT_ADMIN_ROLE, address(ADMIN)])).toBe(true);
    expect(await read("hasRole", [DEFAULT_ADMIN_ROLE, address(DEPLOYER)])).toBe(false);
    expect(await read("measurementStatus", [1, release1.hash])).toMatchObject({ status: 1 });
  });

  it("--dry-run says what it would do and sends nothing; refusals before anything is sent", async () => {
    const dry = await run(["deploy", "--rpc", anvil.rpcUrl, "--relayer", RELAYER, "--dry-run"], { DEPLOYER_PRIVATE_KEY: DEPLOYER });
    expect([dry.code, dry.out]).toEqual([0, expect.stringContaining("no measurement given")]);
    expect(dry.out).not.toContain("TEE_REGISTRY_ADDRESS");
    const noKey = await run(["deploy", "--rpc", anvil.rpcUrl, "--relayer", RELAYER], { DEPLOYER_PRIVATE_KEY: "0x1234" });
    expect([noKey.code, noKey.err]).toEqual([2, expect.stringContaining("set DEPLOYER_PRIVATE_KEY to the 32-byte hex private key (value not shown)")]);
    expect((await run(["deploy", "--rpc", anvil.rpcUrl], { DEPLOYER_PRIVATE_KEY: DEPLOYER })).err).toContain("--relayer 0x..");
    expect(await run(["deploy", "--rpc", anvil.rpcUrl, "--relayer", RELAYER, "--chain-id", "1"], { DEPLOYER_PRIVATE_KEY: DEPLOYER })).toMatchObject({ code: 1, err: "error: the node at --rpc is chain 84532, not 1" });
  });
});

describe("the registry admin's calls", () => {
  const on = () => ["--rpc", anvil.rpcUrl, "--registry", registry];

  it("approves and revokes a measurement with the admin's key, and status tells which", async () => {
    const approve = await run(["approve", ...on(), "--measurement", release2.hash, "--label", "release-2"], { REGISTRY_ADMIN_PRIVATE_KEY: ADMIN });
    expect([approve.code, approve.out]).toEqual([0, expect.stringMatching(/^approveMeasurement: done in tx 0x/)]);
    expect(await run(["status", ...on(), "--measurement", release2.hash])).toMatchObject({ code: 0, out: expect.stringMatching(/: approved \(approved at block \d+\)$/) });
    expect((await run(["revoke", ...on(), "--measurement", release2.hash], { REGISTRY_ADMIN_PRIVATE_KEY: ADMIN })).code).toBe(0);
    expect(await run(["status", ...on(), "--measurement", release2.hash])).toMatchObject({ code: 1, out: expect.stringMatching(/: revoked \(approved at block \d+, revoked at block \d+\)$/) });
  });

  it.each<[string, string[], Record<string, string>, string]>([
    ["the deployer, no longer admin", ["approve", "--measurement", release2.hash], { REGISTRY_ADMIN_PRIVATE_KEY: DEPLOYER }, "refused: registry_access_control_unauthorized_account"],
    ["a revoked measurement, approved again", ["approve", "--measurement", release2.hash], { REGISTRY_ADMIN_PRIVATE_KEY: ADMIN }, "refused: registry_measurement_is_revoked"],
    ["a TEE never registered", ["revoke-tee", "--tee-id", `0x${"ab".repeat(32)}`], { REGISTRY_ADMIN_PRIVATE_KEY: ADMIN }, "refused: registry_tee_not_registered"],
  ])("refuses %s, naming the contract's error", async (_name, argv, env, reason) => {
    const r = await run([argv[0]!, ...on(), ...argv.slice(1)], env);
    expect(r.code).toBe(1);
    expect(r.err).toContain(reason);
  });

  it("--calldata prints the call for a multisig admin and sends nothing", async () => {
    const r = await run(["revoke", ...on(), "--pcrs", "build.json", "--calldata"]);
    expect(r.code, r.err).toBe(0);
    const data = r.out.match(/^data: (0x[0-9a-f]+)$/m)![1] as Hex;
    expect(r.out).toContain(`to: ${registry}`);
    expect(decodeFunctionData({ abi: TEE_REGISTRY_ABI, data })).toMatchObject({ functionName: "revokeMeasurement", args: [1, release1.hash] });
    expect(await read("measurementStatus", [1, release1.hash])).toMatchObject({ status: 1 });
  });

  it.each<[string, string[], string]>([
    ["no command", [], "a command is needed"],
    ["no registry", ["approve", "--rpc", "http://127.0.0.1:1"], "--rpc URL is required"],
    ["an unknown TEE type", ["status", "--tee-type", "intel-tdx"], "Intel TDX is not supported yet"],
    ["revoke-tee without a TEE", ["revoke-tee"], "revoke-tee needs --tee-id"],
    ["approve without a measurement", ["approve"], "a measurement is needed"],
  ])("usage: %s (exit 2)", async (_name, argv, message) => {
    const args = argv.length && argv[1] !== "--rpc" ? [argv[0]!, ...on(), ...argv.slice(1)] : argv.length ? [argv[0]!] : [];
    const r = await run(args, { REGISTRY_ADMIN_PRIVATE_KEY: ADMIN });
    expect(r.code).toBe(2);
    expect(r.err).toContain(message);
  });
});
