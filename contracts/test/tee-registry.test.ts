/**
 * TEERegistry on a real anvil chain: measurements approved and revoked by the admin, TEEs recorded by
 * the registrar after the off-chain verification of a Nitro-format document (TestAuthority), the
 * gateway's RSA-PSS heartbeats relayed, and the history an auditor rebuilds from events alone.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createPublicClient,
  createTestClient,
  createWalletClient,
  http,
  keccak256,
  toHex,
  type Abi,
  type Address,
  type Hex,
  type PublicClient,
} from "viem";
import { privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import { CHAIN_IDS, deployContract, devKey, DevRole, loadArtifact, localChain, startAnvil, type AnvilNode } from "@facilitator/devnet";
import {
  ANY_HEARTBEAT_AGE,
  generateGatewayKey,
  heartbeatMessageHash,
  KeyScheme,
  measurementOf,
  MeasurementStatus,
  NonceBook,
  signRsaPss,
  TEE_REGISTRY_ABI,
  TeeType,
  TestAuthority,
  testPcrs,
  verifyHeartbeatSignature,
  verifyNitroAttestation,
  type GatewayKey,
} from "@facilitator/tee";

const CHAIN_ID = CHAIN_IDS["og-evm"];
const abi = TEE_REGISTRY_ABI;
const NITRO = TeeType.AwsNitro;
const IMAGE_A = measurementOf(...(Object.values(testPcrs("image-a")) as [Hex, Hex, Hex]));
const IMAGE_B = measurementOf(...(Object.values(testPcrs("image-b")) as [Hex, Hex, Hex]));

let anvil: AnvilNode;
let registry: Address;
let client: PublicClient;
let authority: TestAuthority;
const admin = privateKeyToAccount(devKey(DevRole.deployer));
const registrar = privateKeyToAccount(devKey(DevRole.facilitator));
const relayer = privateKeyToAccount(devKey(DevRole.relayer));
const stranger = privateKeyToAccount(devKey(DevRole.thirdParty));

async function send(account: PrivateKeyAccount, functionName: string, args: readonly unknown[]) {
  const { request } = await client.simulateContract({ address: registry, abi, functionName, args, account } as never);
  const wallet = createWalletClient({ account, chain: localChain(CHAIN_ID, anvil.rpcUrl), transport: http(anvil.rpcUrl), pollingInterval: 50 });
  const receipt = await client.waitForTransactionReceipt({ hash: await wallet.writeContract(request as never), pollingInterval: 50 });
  expect(receipt.status).toBe("success");
  return receipt;
}

/** The custom error a call reverts with (from simulation), or undefined when it would succeed. */
async function revertOf(account: PrivateKeyAccount, functionName: string, args: readonly unknown[]) {
  try {
    await client.simulateContract({ address: registry, abi, functionName, args, account } as never);
    return undefined;
  } catch (e) {
    const data = (e as { cause?: { data?: { errorName?: string; args?: readonly unknown[] } } }).cause?.data;
    return { name: data?.errorName ?? "unknown", args: data?.args ?? [] };
  }
}

const read = <T>(functionName: string, args: readonly unknown[]) => client.readContract({ address: registry, abi, functionName, args } as never) as Promise<T>;
const latestTimestamp = async () => (await client.getBlock()).timestamp;

/**
 * What the registrar does for a gateway: issue a nonce, receive the enclave's document, verify it
 * fully against the local root and the measurements approved on chain, then record it.
 */
async function registerGateway(key: GatewayKey, image: typeof IMAGE_A, teeId: Hex = key.teeId) {
  const nonces = new NonceBook({ ttlMs: 60_000 });
  const document = await authority.attest({ signingKey: key.publicKey, nonce: (await nonces.issue()).nonce, pcrs: testPcrs(image === IMAGE_A ? "image-a" : "image-b") });
  const verdict = await verifyNitroAttestation(document, {
    roots: [authority.rootPem],
    approvedMeasurements: async (m) => (await read<{ status: number }>("measurementStatus", [NITRO, m.hash])).status === MeasurementStatus.Approved,
    nonce: nonces,
    expectedKey: key.publicKey,
    now: new Date(),
  });
  if (!verdict.ok) throw new Error(`${verdict.reason}: ${verdict.message}`);
  const blobId = toHex(`blob-${verdict.attestation.documentHash.slice(2, 10)}`);
  const args = [teeId, NITRO, KeyScheme.RsaPssSha256, toHex(key.publicKey), verdict.attestation.measurement.hash, blobId, verdict.attestation.documentHash] as const;
  return { args, receipt: await send(registrar, "register", args), documentHash: verdict.attestation.documentHash };
}

beforeAll(async () => {
  [anvil, authority] = await Promise.all([startAnvil({ chainId: CHAIN_ID }), TestAuthority.create()]);
  client = createPublicClient({ transport: http(anvil.rpcUrl), pollingInterval: 50 }) as PublicClient;
  registry = await deployContract({
    rpcUrl: anvil.rpcUrl,
    chainId: CHAIN_ID,
    deployerKey: devKey(DevRole.deployer),
    artifact: "TEERegistry",
    args: [admin.address, [registrar.address], [relayer.address]],
  });
  await send(admin, "approveMeasurement", [NITRO, IMAGE_A.hash, "image-a v1"]);
});

afterAll(async () => {
  await anvil?.stop();
});

describe("TEERegistry", () => {
  it("has the compiled contract's ABI for every item TEE_REGISTRY_ABI states", () => {
    // The compiled ABI adds internalType and spells out defaults (name "", indexed and anonymous false).
    const kept = ([k, x]: [string, unknown]) => k !== "internalType" && x !== "" && x !== false;
    const shape = (v: unknown): unknown =>
      Array.isArray(v) ? v.map(shape) : v && typeof v === "object" ? Object.fromEntries(Object.entries(v).filter(kept).map(([k, x]) => [k, shape(x)])) : v;
    const compiled = loadArtifact("TEERegistry").abi as Abi;
    for (const item of abi) {
      const twin = compiled.find((c) => c.type === item.type && "name" in c && c.name === item.name);
      expect(shape(twin), item.name).toEqual(shape(item));
    }
  });

  it("lets only the admin approve and revoke measurements, and records the approval block", async () => {
    expect(await revertOf(stranger, "approveMeasurement", [NITRO, IMAGE_B.hash, "b"])).toMatchObject({ name: "AccessControlUnauthorizedAccount" });
    expect(await revertOf(registrar, "approveMeasurement", [NITRO, IMAGE_B.hash, "b"])).toMatchObject({ name: "AccessControlUnauthorizedAccount" });
    const receipt = await send(admin, "approveMeasurement", [NITRO, IMAGE_B.hash, "image-b v1"]);
    expect(await read("measurementStatus", [NITRO, IMAGE_B.hash])).toEqual({ status: MeasurementStatus.Approved, approvedBlock: receipt.blockNumber, revokedBlock: 0n });
    expect(await revertOf(admin, "approveMeasurement", [NITRO, IMAGE_B.hash, "again"])).toMatchObject({ name: "MeasurementAlreadyApproved" });
    expect(await revertOf(admin, "approveMeasurement", [NITRO, `0x${"00".repeat(32)}`, "zero"])).toMatchObject({ name: "ZeroMeasurement" });
    expect(await revertOf(stranger, "revokeMeasurement", [NITRO, IMAGE_B.hash])).toMatchObject({ name: "AccessControlUnauthorizedAccount" });
  });

  it("records a TEE whose document was verified off chain, with everything an auditor needs", async () => {
    const gw = generateGatewayKey();
    expect(await revertOf(stranger, "register", [gw.teeId, NITRO, KeyScheme.RsaPssSha256, toHex(gw.publicKey), IMAGE_A.hash, "0x01", keccak256("0x01")])).toMatchObject({
      name: "AccessControlUnauthorizedAccount",
    });
    const { args, receipt, documentHash } = await registerGateway(gw, IMAGE_A);
    const tee = await read<Record<string, unknown>>("getTee", [gw.teeId]);
    expect(tee).toMatchObject({
      signingKey: toHex(gw.publicKey),
      scheme: KeyScheme.RsaPssSha256,
      teeType: NITRO,
      registeredBlock: receipt.blockNumber,
      lastHeartbeat: 0n,
      revokedBlock: 0n,
      measurement: IMAGE_A.hash,
      attestationHash: documentHash,
      attestationBlobId: args[5],
    });
    expect(await read("teeIdByKeyHash", [keccak256(gw.publicKey)])).toBe(gw.teeId);
    expect(await read("isActive", [gw.teeId, 60n])).toBe(true);
    const [event] = await client.getContractEvents({ address: registry, abi, eventName: "TeeRegistered", args: { teeId: gw.teeId }, fromBlock: 0n });
    expect(event!.args).toMatchObject({ teeType: NITRO, measurement: IMAGE_A.hash, scheme: KeyScheme.RsaPssSha256, signingKey: toHex(gw.publicKey), attestationHash: documentHash });
    expect(event!.blockNumber).toBe(receipt.blockNumber);
  });

  it("refuses a key already registered under another id, an id taken, an unapproved measurement and malformed keys", async () => {
    const gw = generateGatewayKey();
    await registerGateway(gw, IMAGE_A);
    const base = [gw.teeId, NITRO, KeyScheme.RsaPssSha256, toHex(gw.publicKey), IMAGE_A.hash, toHex("blob"), keccak256("0x01")] as const;
    const otherId = keccak256(toHex("another id"));
    expect(await revertOf(registrar, "register", [otherId, ...base.slice(1)])).toEqual({ name: "KeyAlreadyRegistered", args: [gw.teeId] });
    const fresh = generateGatewayKey();
    expect(await revertOf(registrar, "register", [gw.teeId, NITRO, KeyScheme.RsaPssSha256, toHex(fresh.publicKey), ...base.slice(4)])).toMatchObject({ name: "TeeAlreadyRegistered" });
    const unapproved = keccak256(toHex("never approved"));
    expect(await revertOf(registrar, "register", [fresh.teeId, NITRO, KeyScheme.RsaPssSha256, toHex(fresh.publicKey), unapproved, ...base.slice(5)])).toMatchObject({ name: "MeasurementNotApproved" });
    expect(await revertOf(registrar, "register", [fresh.teeId, 2, KeyScheme.RsaPssSha256, toHex(fresh.publicKey), ...base.slice(4)])).toMatchObject({ name: "MeasurementNotApproved" });
    expect(await revertOf(registrar, "register", [fresh.teeId, NITRO, KeyScheme.Secp256k1Eip712, toHex(fresh.publicKey), ...base.slice(4)])).toMatchObject({ name: "InvalidSigningKey" });
    expect(await revertOf(registrar, "register", [fresh.teeId, NITRO, KeyScheme.RsaPssSha256, toHex(fresh.publicKey), IMAGE_A.hash, "0x", keccak256("0x01")])).toMatchObject({ name: "MissingAttestation" });
    // A secp256k1 TEE registers with its 65-byte uncompressed key.
    const secp = privateKeyToAccount(devKey(7));
    await send(registrar, "register", [keccak256(secp.publicKey), NITRO, KeyScheme.Secp256k1Eip712, secp.publicKey, IMAGE_A.hash, toHex("blob-secp"), keccak256("0x02")]);
    expect(await revertOf(registrar, "register", [otherId, NITRO, KeyScheme.Secp256k1Eip712, secp.publicKey, IMAGE_A.hash, toHex("b"), keccak256("0x02")])).toEqual({
      name: "KeyAlreadyRegistered",
      args: [keccak256(secp.publicKey)],
    });
  });

  it("relays heartbeats the relayer verified, keeps their signatures for auditors, and ages TEEs without them", async () => {
    const gw = generateGatewayKey();
    await registerGateway(gw, IMAGE_A);
    const ts = await latestTimestamp();
    const signature = signRsaPss(gw.privateKeyPem, heartbeatMessageHash(gw.teeId, ts));
    expect(verifyHeartbeatSignature({ publicKey: gw.publicKey, teeId: gw.teeId, timestamp: ts, signature })).toEqual({ ok: true });
    const sigHex = toHex(Buffer.from(signature, "base64"));

    expect(await revertOf(registrar, "heartbeat", [gw.teeId, ts, sigHex])).toMatchObject({ name: "AccessControlUnauthorizedAccount" });
    expect(await revertOf(relayer, "heartbeat", [keccak256("0x99"), ts, sigHex])).toMatchObject({ name: "TeeNotRegistered" });
    expect(await revertOf(relayer, "heartbeat", [gw.teeId, ts + 3_600n, sigHex])).toMatchObject({ name: "HeartbeatFromFuture" });
    const receipt = await send(relayer, "heartbeat", [gw.teeId, ts, sigHex]);
    expect(await revertOf(relayer, "heartbeat", [gw.teeId, ts, sigHex])).toMatchObject({ name: "HeartbeatNotNewer" });
    expect(await read<{ lastHeartbeat: bigint }>("getTee", [gw.teeId])).toMatchObject({ lastHeartbeat: ts });

    // An auditor re-verifies the relayed heartbeat from the log and the registered key alone.
    const [log] = await client.getContractEvents({ address: registry, abi, eventName: "HeartbeatRelayed", args: { teeId: gw.teeId }, blockHash: receipt.blockHash });
    const key = (await read<{ signingKey: Hex }>("getTee", [gw.teeId])).signingKey;
    expect(verifyHeartbeatSignature({ publicKey: Buffer.from(key.slice(2), "hex"), teeId: gw.teeId, timestamp: log!.args.timestamp!, signature: Buffer.from(log!.args.signature!.slice(2), "hex") })).toEqual({ ok: true });

    const test = createTestClient({ mode: "anvil", transport: http(anvil.rpcUrl) });
    await test.increaseTime({ seconds: 1_000 });
    await test.mine({ blocks: 1 });
    expect(await read("isActive", [gw.teeId, 1_800n])).toBe(true);
    expect(await read("isActive", [gw.teeId, 600n])).toBe(false);
    expect(await read("isActive", [gw.teeId, ANY_HEARTBEAT_AGE])).toBe(true);
  });

  it("revoking a measurement deactivates every TEE that attested it, for good, and leaves the others", async () => {
    const [a1, a2, b1] = [generateGatewayKey(), generateGatewayKey(), generateGatewayKey()];
    await registerGateway(a1, IMAGE_A);
    await registerGateway(a2, IMAGE_A);
    await registerGateway(b1, IMAGE_B);
    const revoked = await send(admin, "revokeMeasurement", [NITRO, IMAGE_B.hash]);

    expect(await read("isActive", [b1.teeId, ANY_HEARTBEAT_AGE])).toBe(false);
    expect(await read("isActive", [a1.teeId, ANY_HEARTBEAT_AGE])).toBe(true);
    expect(await read("isActive", [a2.teeId, ANY_HEARTBEAT_AGE])).toBe(true);
    expect(await read("measurementStatus", [NITRO, IMAGE_B.hash])).toMatchObject({ status: MeasurementStatus.Revoked, revokedBlock: revoked.blockNumber });
    expect(await revertOf(admin, "approveMeasurement", [NITRO, IMAGE_B.hash, "again"])).toMatchObject({ name: "MeasurementIsRevoked" });
    expect(await revertOf(admin, "revokeMeasurement", [NITRO, IMAGE_B.hash])).toMatchObject({ name: "MeasurementNotApproved" });
    const ts = (await latestTimestamp()) + 1n;
    const sig = toHex(Buffer.from(signRsaPss(b1.privateKeyPem, heartbeatMessageHash(b1.teeId, ts)), "base64"));
    expect(await revertOf(relayer, "heartbeat", [b1.teeId, ts, sig])).toMatchObject({ name: "MeasurementNotApproved" });
    expect(await revertOf(registrar, "register", [generateGatewayKey().teeId, NITRO, KeyScheme.RsaPssSha256, "0x01", IMAGE_B.hash, "0x01", keccak256("0x01")])).toMatchObject({
      name: "MeasurementNotApproved",
    });

    // The history, from events alone: B approved at block N, b1 registered after, B revoked at block M.
    const approvals = await client.getContractEvents({ address: registry, abi, eventName: "MeasurementApproved", args: { measurement: IMAGE_B.hash }, fromBlock: 0n });
    const registrations = await client.getContractEvents({ address: registry, abi, eventName: "TeeRegistered", args: { teeId: b1.teeId }, fromBlock: 0n });
    const revocations = await client.getContractEvents({ address: registry, abi, eventName: "MeasurementRevoked", args: { measurement: IMAGE_B.hash }, fromBlock: 0n });
    expect(approvals).toHaveLength(1);
    expect(revocations.map((l) => l.blockNumber)).toEqual([revoked.blockNumber]);
    expect(approvals[0]!.blockNumber < registrations[0]!.blockNumber && registrations[0]!.blockNumber < revoked.blockNumber).toBe(true);
  });

  it("lets the registrar describe where a registered TEE serves and is paid, apart from its attestation", async () => {
    const gw = generateGatewayKey();
    await registerGateway(gw, IMAGE_A);
    const payTo = privateKeyToAccount(devKey(8)).address;
    expect(await revertOf(stranger, "describeTee", [gw.teeId, "https://tee.example", payTo])).toMatchObject({ name: "AccessControlUnauthorizedAccount" });
    expect(await revertOf(registrar, "describeTee", [keccak256("0x77"), "https://tee.example", payTo])).toMatchObject({ name: "TeeNotRegistered" });
    expect(await revertOf(registrar, "describeTee", [gw.teeId, `https://${"a".repeat(300)}`, payTo])).toMatchObject({ name: "EndpointTooLong" });
    const receipt = await send(registrar, "describeTee", [gw.teeId, "https://tee.example", payTo]);
    expect(await read("getTee", [gw.teeId])).toMatchObject({ endpoint: "https://tee.example", paymentAddress: payTo });
    const [event] = await client.getContractEvents({ address: registry, abi, eventName: "TeeDescribed", args: { teeId: gw.teeId }, blockHash: receipt.blockHash });
    expect(event!.args).toMatchObject({ endpoint: "https://tee.example", paymentAddress: payTo });
  });

  it("lets the admin revoke one TEE, whose key stays taken", async () => {
    const gw = generateGatewayKey();
    await registerGateway(gw, IMAGE_A);
    expect(await revertOf(registrar, "revokeTee", [gw.teeId])).toMatchObject({ name: "AccessControlUnauthorizedAccount" });
    const receipt = await send(admin, "revokeTee", [gw.teeId]);
    expect(await read("isActive", [gw.teeId, ANY_HEARTBEAT_AGE])).toBe(false);
    expect(await read("getTee", [gw.teeId])).toMatchObject({ revokedBlock: receipt.blockNumber });
    expect(await revertOf(admin, "revokeTee", [gw.teeId])).toMatchObject({ name: "TeeIsRevoked" });
    expect(await revertOf(registrar, "register", [keccak256("0x1234"), NITRO, KeyScheme.RsaPssSha256, toHex(gw.publicKey), IMAGE_A.hash, "0x01", keccak256("0x01")])).toEqual({
      name: "KeyAlreadyRegistered",
      args: [gw.teeId],
    });
    expect(await read("isActive", [keccak256("0xdead"), ANY_HEARTBEAT_AGE])).toBe(false);
  });
});
