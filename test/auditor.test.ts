/**
 * The auditor against the real thing: anvil, a real SettlementRelay with one relayer, the local
 * Walrus-compatible service, batches built with the inference package's exports. A genuine
 * inference verifies through the library and the CLI; each forgery is caught by the check whose
 * evidence it breaks.
 */
import { spawn } from "node:child_process";
import { readFileSync, rmSync, writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPublicClient, createWalletClient, encodeFunctionData, http, keccak256, toHex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { localChain, repoRoot } from "@facilitator/devnet";
import { CHECK_ORDER, createAuditor, type AuditConfig, type Auditor, type AuditReport } from "@facilitator/auditor";
import { listen } from "@facilitator/server/testing";
import { buildBatchTree, recordId } from "@facilitator/inference";
import { SETTLEMENT_RELAY_ABI } from "../packages/inference/src/relay.ts";
import { CHAIN_ID, startAuditWorld, type Anchored, type AuditWorld } from "./helpers/auditor-world.ts";

let world: AuditWorld;
let auditor: Auditor;
let genuine: Anchored;
let hints: HintServer;

const config = (extra: Partial<AuditConfig> = {}): AuditConfig => ({
  rpcUrl: world.rpcUrl,
  chainId: CHAIN_ID,
  relayAddress: world.relay,
  aggregatorUrl: world.aggregatorUrl,
  teeKeys: world.teeKeys,
  blobIdCheck: "local",
  ...extra,
});

beforeAll(async () => {
  world = await startAuditWorld();
  hints = await startHintServer();
  genuine = await world.anchorBatch(["a", "b", "c", "d", "e"].map((l) => world.record(`genuine ${l}`)));
  auditor = await createAuditor(config());
});

afterAll(async () => {
  await hints?.stop();
  await world?.stop();
});

const failing = (r: AuditReport) => r.checks.find((c) => c.name === r.failedCheck);

describe("a genuine inference", () => {
  it("verifies through the library, every check passing on its own evidence", async () => {
    const record = genuine.records[2]!;
    const report = await auditor.verifyInference({ inputHash: record.inputHash, outputHash: record.outputHash });
    expect(report.verified).toBe(true);
    expect(report.failedCheck).toBeUndefined();
    expect(report.checks.map((c) => c.name)).toEqual(CHECK_ORDER);
    // Without a TEE registry the enclave checks do not apply: anchored, signed by a configured key, not attested.
    const enclave = ["tee-registered", "tee-attestation", "tee-measurement"];
    expect(report.checks.filter((c) => !enclave.includes(c.name)).every((c) => c.ok && !c.skipped)).toBe(true);
    expect(report.checks.filter((c) => enclave.includes(c.name)).every((c) => c.ok && c.skipped)).toBe(true);
    expect(report.assurance).toBe("anchored");
    expect(report.batch).toMatchObject({ root: genuine.root, blobId: genuine.blobId, transactionHash: genuine.transactionHash, batchSize: "5" });
    expect(report.batch!.leaf).toMatchObject({ recordId: genuine.ids[2], proof: genuine.tree.proof(2), teeId: world.tee.teeId, version: 2, settlementType: "settle-batch" });
    // The relay's own view function agrees with the auditor's leaf and proof.
    const leaf = report.batch!.leaf!;
    const onChain = await createPublicClient({ transport: http(world.rpcUrl) }).readContract({
      address: world.relay,
      abi: SETTLEMENT_RELAY_ABI,
      functionName: "verifyInference",
      args: [genuine.root, leaf.proof, { teeId: leaf.teeId, inputHash: leaf.inputHash, outputHash: leaf.outputHash, timestamp: BigInt(leaf.timestamp), settlementType: leaf.settlementType!, metadataHash: leaf.metadataHash!, teeSignature: leaf.teeSignature }],
    });
    expect(onChain).toBe(true);
  });

  it("verifies with the facilitator's hint, and says the hint's proof agrees", async () => {
    const record = genuine.records[0]!;
    const hintUrl = hints.serve(genuine.ids[0]!, { root: genuine.root, index: 0, proof: genuine.tree.proof(0), batchSize: 5, walrusBlobId: genuine.blobId, transactionHash: genuine.transactionHash });
    const report = await auditor.verifyInference({ inputHash: record.inputHash, outputHash: record.outputHash, hintUrl });
    expect(report.verified).toBe(true);
    expect(report.checks.find((c) => c.name === "proof")!.detail).toMatch(/the facilitator's proof agrees/);
  });

  it("verifies a whole batch", async () => {
    const report = await auditor.verifyBatch(genuine.root);
    expect(report.verified).toBe(true);
    expect(report.checks.find((c) => c.name === "proof")!.detail).toBe(`all 5 leaves prove against ${genuine.root}`);
    expect(report.checks.find((c) => c.name === "tee-signature")!.detail).toBe("5 signed leaves verify");
  });

  it("verifies an individual settlement from its Settlement event", async () => {
    const input = keccak256(toHex("single input"));
    const output = keccak256(toHex("single output"));
    const tx = await world.settle(input, output);
    const report = await auditor.verifyInference({ inputHash: input, outputHash: output });
    expect(report.verified).toBe(true);
    expect(report.settlement).toMatchObject({ kind: "Settlement", transactionHash: tx, emitter: world.relay });
    expect(report.checks.filter((c) => !c.skipped).map((c) => c.name)).toEqual(["find-anchor", "relay-event"]);
  });

  it("verifies through the CLI with its defaults from devnet.json: exit 0 and a JSON report", async () => {
    const dir = mkdtempSync(join(tmpdir(), "auditor-devnet-"));
    const path = join(dir, "devnet.json");
    writeFileSync(path, JSON.stringify({
      facilitatorUrl: hints.url,
      networks: { "base-sepolia": { rpcUrl: world.rpcUrl, chainId: CHAIN_ID } },
      settlementRelay: { network: "base-sepolia", address: world.relay },
      walrus: { publisherUrl: world.publisherUrl, aggregatorUrl: world.aggregatorUrl },
      tee: { teeId: world.tee.teeId, privateKey: world.tee.key, address: world.tee.address },
    }));
    try {
      const record = genuine.records[1]!;
      hints.serve(genuine.ids[1]!, { root: genuine.root, proof: genuine.tree.proof(1) });
      const run = await cli(["verify", "--input-hash", record.inputHash, "--output-hash", record.outputHash, "--devnet", path, "--record-id", genuine.ids[1]!, "--json"]);
      expect(run.code, run.stderr).toBe(0);
      const report = JSON.parse(run.stdout) as AuditReport;
      expect(report.verified).toBe(true);
      expect(report.batch!.leaf!.recordId).toBe(genuine.ids[1]);
      expect(report.checks.find((c) => c.name === "blob-id")!.detail).toMatch(/under the local service's scheme/);
      expect(report.checks.find((c) => c.name === "tee-signature")!.detail).toMatch(/the key registered for TEE/);
      expect(report.checks.find((c) => c.name === "proof")!.detail).toMatch(/the facilitator's proof agrees/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the CLI exits 1 naming the failing check, and 2 on usage or configuration errors", async () => {
    const [unknown, usage, wrongChain] = await Promise.all([
      cli(["verify", "--input-hash", keccak256(toHex("x")), "--output-hash", keccak256(toHex("y")), ...flags(), "--json"]),
      cli(["verify", "--input-hash", "0x1234", ...flags()]),
      cli(["scan", ...flags(), "--chain-id", "8453"]),
    ]);
    expect(unknown.code).toBe(1);
    expect(JSON.parse(unknown.stdout).failedCheck).toBe("find-anchor");
    expect([usage.code, usage.stderr]).toEqual([2, expect.stringMatching(/--input-hash must be 32-byte hex/)]);
    expect([wrongChain.code, wrongChain.stderr]).toEqual([2, expect.stringMatching(/serves chain 84532, not the configured 8453/)]);
  });
});

describe("a batch stored as a compact dump (values only; the auditor rebuilds every node)", () => {
  const anchorCompact = async (records: ReturnType<AuditWorld["record"]>[], createdAt: string) => {
    const tree = buildBatchTree(records, records.map(recordId), createdAt, { compactAbove: 0 });
    const blobId = await world.upload(tree.dumpJson);
    await world.settleBatch(tree.root, records.length, blobId);
    return { tree, blobId };
  };

  it("verifies one inference and the whole batch, walking a spread of the paths", async () => {
    const records = Array.from({ length: 70 }, (_, i) => world.record(`compact ${i}`));
    const { tree } = await anchorCompact(records, "2025-06-01T00:00:00.000Z");
    expect(JSON.parse(tree.dumpJson).tree.format).toBe("compact-v1");
    const one = await auditor.verifyInference({ inputHash: records[3]!.inputHash, outputHash: records[3]!.outputHash });
    expect(one.verified).toBe(true);
    expect(one.checks.find((c) => c.name === "recompute-root")!.detail).toBe(`root ${tree.root} from 70 leaves (compact dump: every node rebuilt)`);
    expect(one.batch!.leaf).toMatchObject({ recordId: recordId(records[3]!), proof: tree.proof(3) });
    const whole = await auditor.verifyBatch(tree.root);
    expect(whole.verified).toBe(true);
    expect(whole.checks.find((c) => c.name === "proof")!.detail).toBe(
      `all 70 leaves prove against ${tree.root} (every path is in the tree rebuilt from the leaves; 64 walked, also by OpenZeppelin's verifier)`,
    );
  });

  it("catches a leaf changed in it by the root it rebuilds to", async () => {
    const records = [world.record("compact x"), world.record("compact y")];
    const { tree, blobId } = await anchorCompact(records, "2025-06-02T00:00:00.000Z");
    const forgedOutput = keccak256(toHex("a compact output that was never anchored"));
    const forged = buildBatchTree([records[0]!, { ...records[1]!, outputHash: forgedOutput }], records.map(recordId), "2025-06-02T00:00:00.000Z", { compactAbove: 0 });
    const path = join(world.blobDir, blobId);
    const original = readFileSync(path);
    writeFileSync(path, forged.dumpJson);
    const noIdCheck = await createAuditor(config({ blobIdCheck: "none" }));
    const report = await noIdCheck.verifyBatch(tree.root);
    expect([report.verified, report.failedCheck]).toEqual([false, "root-matches-event"]);
    expect(report.checks.find((c) => c.name === "proof")!.detail).toBe(`no leaf's path reaches the anchored root ${tree.root}: the leaves rebuild to ${forged.root}`);
    writeFileSync(path, original);
  });
});

describe("forgeries, each caught by the check whose evidence it breaks", () => {
  it("a leaf changed in the dump", async () => {
    const batch = await world.anchorBatch(["x", "y", "z"].map((l) => world.record(`changed ${l}`)));
    const forgedOutput = keccak256(toHex("an output that was never anchored"));
    const path = join(world.blobDir, batch.blobId);
    const original = readFileSync(path, "utf8");
    const dump = JSON.parse(original);
    const at = dump.tree.values.findIndex((v: { value: string[] }) => v.value[1] === batch.records[1]!.inputHash);
    dump.tree.values[at].value[2] = forgedOutput;
    const query = { inputHash: batch.records[1]!.inputHash, outputHash: forgedOutput };

    // Served under the real blob id: its content no longer hashes to the id.
    writeFileSync(path, JSON.stringify(dump));
    let report = await auditor.verifyInference(query);
    expect([report.verified, report.failedCheck]).toEqual([false, "blob-id"]);
    expect(report.checks.find((c) => c.name === "root-matches-event")!.ok).toBe(false);

    // Without the blob id check, the dump's own tree gives the change away.
    const noIdCheck = await createAuditor(config({ blobIdCheck: "none" }));
    report = await noIdCheck.verifyInference(query);
    expect([report.verified, report.failedCheck]).toEqual([false, "recompute-root"]);
    expect(failing(report)!.detail).toMatch(/disagrees with its leaves.*a leaf was changed/);

    // Re-hashed into a consistent tree: its root is not the anchored one.
    const forged = world.buildBatch([batch.records[0]!, { ...batch.records[1]!, outputHash: forgedOutput }, batch.records[2]!]);
    writeFileSync(path, forged.dumpJson);
    report = await noIdCheck.verifyInference(query);
    expect([report.verified, report.failedCheck]).toEqual([false, "root-matches-event"]);
    expect(failing(report)!.detail).toBe(`recomputed root ${forged.root} is not the event's root ${batch.root}`);
    writeFileSync(path, original);
  });

  it("a dump from another batch", async () => {
    const other = await world.anchorBatch([world.record("other 1"), world.record("other 2")]);
    const records = [world.record("misfiled 1"), world.record("misfiled 2")];
    const tree = world.buildBatch(records);
    await world.upload(tree.dumpJson);
    await world.settleBatch(tree.root, 2, other.blobId); // the relayer names the wrong dump
    const report = await auditor.verifyBatch(tree.root);
    expect([report.verified, report.failedCheck]).toEqual([false, "root-matches-event"]);
    expect(report.checks.find((c) => c.name === "blob-id")!.ok).toBe(true);
    expect(failing(report)!.detail).toBe(`recomputed root ${other.root} is not the event's root ${tree.root}`);

    const hintUrl = hints.serve("misfiled", { root: tree.root, proof: tree.proof(0) });
    const inference = await auditor.verifyInference({ inputHash: records[0]!.inputHash, outputHash: records[0]!.outputHash, hintUrl });
    expect(inference.failedCheck).toBe("root-matches-event");
    // The other batch's own inferences still verify: a bad event elsewhere does not taint a good one.
    const good = await auditor.verifyInference({ inputHash: other.records[0]!.inputHash, outputHash: other.records[0]!.outputHash });
    expect([good.verified, good.batch!.root]).toEqual([true, other.root]);
  });

  it("a blob whose content does not match its id", async () => {
    const batch = await world.anchorBatch([world.record("swapped 1"), world.record("swapped 2")]);
    const path = join(world.blobDir, batch.blobId);
    const original = readFileSync(path);
    writeFileSync(path, readFileSync(join(world.blobDir, genuine.blobId))); // a genuine dump, of another batch
    const report = await auditor.verifyBatch(batch.root);
    expect([report.verified, report.failedCheck]).toEqual([false, "blob-id"]);
    expect(failing(report)!.detail).toMatch(new RegExp(`content hashes to ${genuine.blobId} under the local service's scheme, not to the anchored blob id ${batch.blobId}`));
    writeFileSync(path, original);
    expect((await auditor.verifyBatch(batch.root)).verified).toBe(true);
  });

  it("a root emitted by another contract with the same event signature", async () => {
    // The same bytecode at another address, where the forger is admin and relayer.
    const lookalike = await world.deployRelay(world.strangerKey);
    const records = [world.record("lookalike 1"), world.record("lookalike 2")];
    const batch = await world.anchorBatch(records, { relay: lookalike, key: world.strangerKey });

    const report = await auditor.verifyBatch(batch.root);
    expect([report.verified, report.failedCheck]).toEqual([false, "relay-event"]);
    expect(report.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(["relay-event"]);
    expect(failing(report)!.detail).toMatch(new RegExp(`emitted by ${lookalike}, not the configured relay ${world.relay}.*anchoredAt\\(${batch.root}\\) is 0`));

    const query = { inputHash: records[0]!.inputHash, outputHash: records[0]!.outputHash };
    expect((await auditor.verifyInference(query)).failedCheck).toBe("find-anchor");
    const hinted = await auditor.verifyInference({ ...query, hint: { root: batch.root, proof: batch.tree.proof(0) } });
    expect(hinted.failedCheck).toBe("relay-event");
  });

  it("a root emitted by an account that is not a relayer", async () => {
    const tree = world.buildBatch([world.record("stranger 1")]);
    const blobId = await world.upload(tree.dumpJson);
    // The real relay refuses the call: the transaction is mined, reverted, and leaves no event.
    const chain = localChain(CHAIN_ID, world.rpcUrl);
    const wallet = createWalletClient({ account: privateKeyToAccount(world.strangerKey), chain, transport: http(world.rpcUrl) });
    const client = createPublicClient({ chain, transport: http(world.rpcUrl), pollingInterval: 50 });
    await expect(
      client.simulateContract({ address: world.relay, abi: SETTLEMENT_RELAY_ABI, functionName: "settleBatch", args: [tree.root, 1n, toHex(blobId)], account: wallet.account }),
    ).rejects.toThrow(/AccessControlUnauthorizedAccount/);
    const data = encodeFunctionData({ abi: SETTLEMENT_RELAY_ABI, functionName: "settleBatch", args: [tree.root, 1n, toHex(blobId)] });
    const hash = await wallet.sendTransaction({ to: world.relay, data, gas: 200_000n });
    const receipt = await client.waitForTransactionReceipt({ hash, pollingInterval: 50 });
    expect([receipt.status, receipt.logs.length]).toEqual(["reverted", 0]);

    const report = await auditor.verifyBatch(tree.root);
    expect([report.verified, report.failedCheck]).toEqual([false, "find-anchor"]);
    // Emitted instead from a look-alike the stranger controls: found, and rejected.
    const lookalike = await world.deployRelay(world.strangerKey);
    await world.settleBatch(tree.root, 1, blobId, { relay: lookalike, key: world.strangerKey });
    const again = await auditor.verifyBatch(tree.root);
    expect([again.verified, again.failedCheck]).toEqual([false, "relay-event"]);
  });

  it("a missing blob", async () => {
    const batch = await world.anchorBatch([world.record("lost 1"), world.record("lost 2")]);
    rmSync(join(world.blobDir, batch.blobId));
    rmSync(join(world.blobDir, `${batch.blobId}.json`));
    const report = await auditor.verifyBatch(batch.root);
    expect([report.verified, report.failedCheck]).toEqual([false, "fetch-dump"]);
    expect(failing(report)!.detail).toBe(`blob ${batch.blobId} is missing from the aggregator (404)`);
    // The relay's own record still checks out: the failure is the blob's alone.
    expect(report.checks.find((c) => c.name === "relay-event")!.ok).toBe(true);

    const query = { inputHash: batch.records[0]!.inputHash, outputHash: batch.records[0]!.outputHash };
    expect((await auditor.verifyInference({ ...query, hint: { root: batch.root } })).failedCheck).toBe("fetch-dump");
    const unhinted = await auditor.verifyInference(query);
    expect(unhinted.failedCheck).toBe("find-anchor");
    expect(failing(unhinted)!.detail).toMatch(new RegExp(`could not be read.*${batch.root}.*missing`));
  });

  it("a TEE signature from another key", async () => {
    const forged = world.record("forged signature", keccak256(toHex("not the TEE")));
    const batch = await world.anchorBatch([world.record("honest"), forged]);
    const report = await auditor.verifyInference({ inputHash: forged.inputHash, outputHash: forged.outputHash });
    expect([report.verified, report.failedCheck]).toEqual([false, "tee-signature"]);
    expect(report.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(["tee-signature"]);
    expect(failing(report)!.detail).toMatch(new RegExp(`but TEE ${world.tee.teeId} is registered to ${world.tee.address}`));
    const whole = await auditor.verifyBatch(batch.root);
    expect(whole.failedCheck).toBe("tee-signature");
    expect(failing(whole)!.detail).toMatch(/^1 of 2 leaves fail/);
  });

  it("a proof that fits another root", async () => {
    const batch = await world.anchorBatch([world.record("proof 1"), world.record("proof 2"), world.record("proof 3")]);
    const target = batch.records[0]!;
    const elsewhere = world.buildBatch([target, world.record("decoy 1"), world.record("decoy 2"), world.record("decoy 3")]);
    const hint = { root: batch.root, proof: elsewhere.proof(0) };
    const report = await auditor.verifyInference({ inputHash: target.inputHash, outputHash: target.outputHash, hint });
    expect([report.verified, report.failedCheck]).toEqual([false, "proof"]);
    expect(failing(report)!.detail).toMatch(new RegExp(`the proof the facilitator handed out leads to ${elsewhere.root}, not to the anchored root ${batch.root}`));

    // A hint naming a root nobody anchored is ignored; the chain alone still finds the real batch.
    const unanchored = await auditor.verifyInference({ inputHash: target.inputHash, outputHash: target.outputHash, hint: { root: elsewhere.root, proof: elsewhere.proof(0) } });
    expect([unanchored.verified, unanchored.batch!.root]).toEqual([true, batch.root]);
    expect(unanchored.notes.join()).toMatch(/which no contract anchored; ignored/);
  });
});

describe("scan", () => {
  it("verifies 50 batches, then reports the one whose blob was removed", async () => {
    const client = createPublicClient({ transport: http(world.rpcUrl), cacheTime: 0 });
    const fromBlock = (await client.getBlockNumber()) + 1n;
    const batches = await Promise.all(
      Array.from({ length: 50 }, (_, i) => world.anchorBatch(Array.from({ length: 1 + (i % 3) }, (_, j) => world.record(`scan ${i}.${j}`)))),
    );
    const progress: number[] = [];
    const all = await auditor.scan({ fromBlock, onProgress: (p) => progress.push(p.done) });
    expect([all.verified, all.total, all.verifiedCount, all.failures]).toEqual([true, 50, 50, []]);
    expect(progress.sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));

    const lost = batches[17]!;
    rmSync(join(world.blobDir, `${lost.blobId}.json`));
    rmSync(join(world.blobDir, lost.blobId));
    const after = await auditor.scan({ fromBlock });
    expect([after.verified, after.total, after.verifiedCount]).toEqual([false, 50, 49]);
    expect(after.failures).toEqual([
      { root: lost.root, transactionHash: lost.transactionHash, blobId: lost.blobId, failedCheck: "fetch-dump", detail: `blob ${lost.blobId} is missing from the aggregator (404)` },
    ]);

    const run = await cli(["scan", "--from-block", fromBlock.toString(), ...flags()]);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(new RegExp(`49 verified, 1 not verified[\\s\\S]*FAIL  ${lost.root}  fetch-dump`));
    expect(run.stderr).toMatch(/scanned 50\/50 batches/);
  });
});

function flags(): string[] {
  const tee = Object.entries(world.teeKeys).flatMap(([id, address]) => ["--tee-key", `${id}=${address}`]);
  return ["--no-devnet", "--rpc", world.rpcUrl, "--chain-id", String(CHAIN_ID), "--relay", world.relay, "--aggregator", world.aggregatorUrl, "--check-blob-id", "local", ...tee];
}

function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(repoRoot, "node_modules", ".bin", "tsx"), ["packages/auditor/src/cli.ts", ...args], {
      cwd: repoRoot,
      env: { ...process.env, NO_COLOR: "1", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

interface HintServer {
  url: string;
  /** Serves `body` at /inference/settlements/:id and returns that URL. */
  serve(id: string, body: unknown): string;
  stop(): Promise<void>;
}

/**
 * Stands in for the facilitator's proof API (GET /inference/settlements/:id). The auditor treats
 * its answers as untrusted hints, so the tests control them fully to show forged hints are caught.
 */
async function startHintServer(): Promise<HintServer> {
  const answers = new Map<string, unknown>();
  const { url, close } = await listen((req, res) => {
    const id = decodeURIComponent((req.url ?? "").replace(/^\/inference\/settlements\//, ""));
    const body = answers.get(id);
    res.writeHead(body ? 200 : 404, { "content-type": "application/json" });
    res.end(JSON.stringify(body ?? { error: "not_found" }));
  });
  return {
    url,
    serve(id, body) {
      answers.set(id, body);
      return `${url}/inference/settlements/${encodeURIComponent(id)}`;
    },
    stop: close,
  };
}

