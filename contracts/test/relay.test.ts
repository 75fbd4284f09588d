import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createPublicClient,
  createWalletClient,
  decodeEventLog,
  http,
  keccak256,
  toHex,
  type Address,
  type Hex,
  type PublicClient,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { CHAIN_IDS, deployContract, devKey, DevRole, localChain, startAnvil, type AnvilNode } from "@facilitator/devnet";
import {
  buildBatchTree,
  leafStruct,
  leafValue,
  normaliseTeeSignature,
  RELAYER_ROLE,
  SETTLEMENT_RELAY_ABI,
  signTeeAttestation,
  signTeeRecord,
  TEE_DOMAIN_SEPARATOR,
  teeAttestationDigest,
  teeMetadataHash,
  teeTypedData,
  type InferenceRecord,
  type TeeAttestation,
} from "@facilitator/inference";

const CHAIN_ID = CHAIN_IDS["base-sepolia"];
const abi = SETTLEMENT_RELAY_ABI;
const h = (label: string): Hex => keccak256(toHex(label));

let anvil: AnvilNode;
let relay: Address;
let client: PublicClient;
const deployer = privateKeyToAccount(devKey(DevRole.deployer));
const relayer = privateKeyToAccount(devKey(DevRole.relayer));
const stranger = privateKeyToAccount(devKey(DevRole.thirdParty));
const teeKey = devKey(7);
const tee = privateKeyToAccount(teeKey);

function walletFor(account: typeof deployer) {
  const chain = localChain(CHAIN_ID, anvil.rpcUrl);
  return createWalletClient({ account, chain, transport: http(anvil.rpcUrl), pollingInterval: 50 });
}

/** Sends a relay call from `account` and returns its receipt (throws on a simulated revert). */
async function send(account: typeof deployer, functionName: string, args: readonly unknown[]) {
  const { request } = await client.simulateContract({ address: relay, abi, functionName, args, account } as never);
  const hash = await walletFor(account).writeContract(request as never);
  return client.waitForTransactionReceipt({ hash, pollingInterval: 50 });
}

async function revertName(account: typeof deployer, functionName: string, args: readonly unknown[]): Promise<string | undefined> {
  try {
    await client.simulateContract({ address: relay, abi, functionName, args, account } as never);
    return undefined;
  } catch (e) {
    return (e as { cause?: { data?: { errorName?: string } } }).cause?.data?.errorName ?? "unknown";
  }
}

function records(n: number, prefix: string): InferenceRecord[] {
  return Array.from({ length: n }, (_, i) => {
    const r: InferenceRecord = { inputHash: h(`${prefix}-in-${i}`), outputHash: h(`${prefix}-out-${i}`), settlementType: "settle-batch" };
    return i % 2 === 0 ? signTeeRecord({ teeId: h("tee-1"), privateKey: teeKey }, { ...r, teeTimestamp: String(1_700_000_000 + i) }) : r;
  });
}

beforeAll(async () => {
  anvil = await startAnvil({ chainId: CHAIN_ID });
  client = createPublicClient({ transport: http(anvil.rpcUrl), pollingInterval: 50 }) as PublicClient;
  relay = await deployContract({ rpcUrl: anvil.rpcUrl, chainId: CHAIN_ID, deployerKey: devKey(DevRole.deployer), artifact: "SettlementRelay", args: [deployer.address, [relayer.address]] });
});

afterAll(async () => {
  await anvil?.stop();
});

describe("SettlementRelay access control", () => {
  it("lets relayers emit each settlement event", async () => {
    const a = await send(relayer, "settle", [h("in"), h("out")]);
    const b = await send(relayer, "settleWithMetadata", [h("in2"), h("out2"), "llama-3", "prompt", "answer"]);
    const c = await send(relayer, "settleBatch", [h("root-a"), 3n, toHex("blob-a")]);
    const events = [a, b, c].map((r) => decodeEventLog({ abi, ...r.logs[0]! }));
    expect(events.map((e) => e.eventName)).toEqual(["Settlement", "SettlementWithMetadata", "BatchSettlement"]);
    expect(events[1]!.args).toMatchObject({ inputHash: h("in2"), outputHash: h("out2"), modelInfo: "llama-3", inputData: "prompt", outputData: "answer" });
    expect(events[2]!.args).toMatchObject({ merkleRoot: h("root-a"), batchSize: 3n, walrusBlobId: toHex("blob-a") });
  });

  it("refuses every settlement from an account without RELAYER_ROLE", async () => {
    expect(await revertName(stranger, "settle", [h("x"), h("y")])).toBe("AccessControlUnauthorizedAccount");
    expect(await revertName(stranger, "settleWithMetadata", [h("x"), h("y"), "", "", ""])).toBe("AccessControlUnauthorizedAccount");
    expect(await revertName(stranger, "settleBatch", [h("root-x"), 1n, "0x"])).toBe("AccessControlUnauthorizedAccount");
    // The admin administers relayers but is not one.
    expect(await revertName(deployer, "settle", [h("x"), h("y")])).toBe("AccessControlUnauthorizedAccount");
  });

  it("lets only the admin grant and revoke the relayer role", async () => {
    expect(await revertName(stranger, "grantRole", [RELAYER_ROLE, stranger.address])).toBe("AccessControlUnauthorizedAccount");
    await send(deployer, "grantRole", [RELAYER_ROLE, stranger.address]);
    await send(stranger, "settle", [h("granted"), h("granted")]);
    await send(deployer, "revokeRole", [RELAYER_ROLE, stranger.address]);
    expect(await revertName(stranger, "settle", [h("x"), h("y")])).toBe("AccessControlUnauthorizedAccount");
  });
});

describe("SettlementRelay batches", () => {
  it("records the block of an anchored root and refuses to anchor it again", async () => {
    const receipt = await send(relayer, "settleBatch", [h("root-once"), 5n, toHex("blob")]);
    const at = await client.readContract({ address: relay, abi, functionName: "anchoredAt", args: [h("root-once")] });
    expect(at).toBe(receipt.blockNumber);
    expect(await revertName(relayer, "settleBatch", [h("root-once"), 5n, toHex("blob")])).toBe("RootAlreadyAnchored");
    expect(await client.readContract({ address: relay, abi, functionName: "anchoredAt", args: [h("never")] })).toBe(0n);
  });

  it("refuses a zero root and an empty batch", async () => {
    expect(await revertName(relayer, "settleBatch", [`0x${"0".repeat(64)}`, 1n, "0x"])).toBe("ZeroRoot");
    expect(await revertName(relayer, "settleBatch", [h("root-empty"), 0n, "0x"])).toBe("EmptyBatch");
  });

  it("verifies a true leaf of an anchored root and rejects a changed one", async () => {
    const recs = records(16, "verify");
    const tree = buildBatchTree(recs, recs.map((_, i) => `id-${i}`), new Date(0).toISOString());
    const verify = (root: Hex, proof: Hex[], leaf: ReturnType<typeof leafStruct>) =>
      client.readContract({ address: relay, abi, functionName: "verifyInference", args: [root, proof, leaf] });

    // Not anchored yet: even a true proof is refused.
    expect(await verify(tree.root, tree.proof(0), leafStruct(recs[0]!))).toBe(false);
    await send(relayer, "settleBatch", [tree.root, 16n, toHex("blob-verify")]);

    for (const i of [0, 1, 7, 15]) {
      expect(await verify(tree.root, tree.proof(i), leafStruct(recs[i]!))).toBe(true);
      const leaf = await client.readContract({ address: relay, abi, functionName: "inferenceLeaf", args: [leafStruct(recs[i]!)] });
      expect(leaf).toBe(tree.leafHash(leafValue(recs[i]!)));
    }
    const l = leafStruct(recs[0]!);
    expect(await verify(tree.root, tree.proof(0), { ...l, outputHash: h("another output") })).toBe(false);
    expect(await verify(tree.root, tree.proof(0), { ...l, timestamp: 1n })).toBe(false);
    expect(await verify(tree.root, tree.proof(0), { ...l, settlementType: "settle" })).toBe(false);
    expect(await verify(tree.root, tree.proof(0), { ...l, metadataHash: h("metadata") })).toBe(false);
    expect(await verify(tree.root, tree.proof(0), { ...l, teeSignature: "0x" })).toBe(false);
    expect(await verify(tree.root, tree.proof(1), l)).toBe(false);
  });
});

describe("SettlementRelay TEE signatures (attestation v2)", () => {
  const meta = { modelInfo: "model-x", inputData: "prompt", outputData: "answer" };
  const att: TeeAttestation = { teeId: h("tee-1"), inputHash: h("in"), outputHash: h("out"), timestamp: 1_700_000_123n, settlementType: "settle-batch", metadataHash: `0x${"0".repeat(64)}` };
  const metaAtt: TeeAttestation = { ...att, settlementType: "settle-metadata", metadataHash: teeMetadataHash(meta) };

  it("computes the same domain, metadata hash and digest as the off-chain code and viem", async () => {
    expect(await client.readContract({ address: relay, abi, functionName: "TEE_DOMAIN_SEPARATOR" })).toBe(TEE_DOMAIN_SEPARATOR);
    expect(await client.readContract({ address: relay, abi, functionName: "inferenceMetadataHash", args: [meta.modelInfo, meta.inputData, meta.outputData] })).toBe(metaAtt.metadataHash);
    for (const a of [att, metaAtt]) {
      const onChain = await client.readContract({ address: relay, abi, functionName: "teeAttestationDigest", args: [a.teeId, a.inputHash, a.outputHash, a.timestamp, a.settlementType, a.metadataHash] });
      expect(onChain).toBe(teeAttestationDigest(a));
    }
  });

  it("accepts the TEE's signature (viem's signTypedData or ours) and refuses others, other types, other metadata, without reverting", async () => {
    const check = (signer: Address, sig: Hex, a: TeeAttestation = att) =>
      client.readContract({ address: relay, abi, functionName: "verifyTeeSignature", args: [signer, { ...a, teeSignature: sig }] });
    const viemSig = await tee.signTypedData(teeTypedData(att));
    expect(signTeeAttestation(teeKey, att)).toBe(viemSig);
    expect(await check(tee.address, viemSig)).toBe(true);
    expect(await check(stranger.address, viemSig)).toBe(false);
    expect(await check(tee.address, viemSig, { ...att, timestamp: att.timestamp + 1n })).toBe(false);
    expect(await check(tee.address, viemSig, { ...att, settlementType: "settle" })).toBe(false);
    expect(await check(tee.address, viemSig, { ...att, metadataHash: metaAtt.metadataHash })).toBe(false);
    expect(await check(tee.address, "0x1234")).toBe(false);
    const metaSig = signTeeAttestation(teeKey, metaAtt);
    expect(await check(tee.address, metaSig, metaAtt)).toBe(true);
    expect(await check(tee.address, metaSig, { ...metaAtt, metadataHash: teeMetadataHash({ ...meta, outputData: "forged" }) })).toBe(false);
  });

  it("accepts the normal form the door stores (v 27/28), and refuses the v 0/1 spelling the door rewrites", async () => {
    const sig = signTeeAttestation(teeKey, att);
    const raw = `${sig.slice(0, 130)}0${parseInt(sig.slice(130), 16) - 27}` as Hex;
    const check = (s: Hex) => client.readContract({ address: relay, abi, functionName: "verifyTeeSignature", args: [tee.address, { ...att, teeSignature: s }] });
    expect(await check(raw)).toBe(false);
    const normal = normaliseTeeSignature(raw);
    expect(normal).toEqual({ ok: true, signature: sig });
    expect(await check((normal as { signature: Hex }).signature)).toBe(true);
  });
});

describe("SettlementRelay gas", () => {
  it("measures gas per anchored inference for batch sizes 1, 16, 256, 1024", async () => {
    const blobId = toHex("x".repeat(43)); // Walrus blob ids are 43 base64url characters
    const lines: string[] = [];
    for (const size of [1, 16, 256, 1024]) {
      const receipt = await send(relayer, "settleBatch", [h(`gas-root-${size}`), BigInt(size), blobId]);
      expect(receipt.status).toBe("success");
      lines.push(`settleBatch size ${String(size).padStart(4)}: ${receipt.gasUsed} gas, ${(Number(receipt.gasUsed) / size).toFixed(1)} gas per inference`);
    }
    const single = await send(relayer, "settle", [h("gas-in"), h("gas-out")]);
    const meta = await send(relayer, "settleWithMetadata", [h("gas-in"), h("gas-out"), "model-x", "i".repeat(200), "o".repeat(200)]);
    lines.push(`settle: ${single.gasUsed} gas; settleWithMetadata (200+200 bytes): ${meta.gasUsed} gas`);
    console.log(lines.join("\n"));
  });
});
