/**
 * The explorer page in a real headless Chromium: the batch list, the search, and the Verify
 * button's verdict, computed in the browser against the root read from the chain (anvil, a real
 * SettlementRelay, the local Walrus-compatible service). With a TEERegistry (the local world's two
 * TEEs, registered through their attestation), the page shows each record's TEE and checks it.
 */
import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keccak256, toHex, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { explorerRoutes, type ExplorerLookup, type ExplorerOptions } from "../packages/server/src/routes/explorer.ts";
import { startLocalTees, type LocalTees } from "../packages/server/src/local-tees.ts";
import { CHROMIUM_PATH, hasChromium, launchChromium, type BrowserContext, type Page } from "@facilitator/auditor/testing";
import { listen } from "@facilitator/server/testing";
import { devKey } from "@facilitator/devnet";
import { buildGatewayBatchTree, recordId, signTeeRecord, TeeRegistryClient, type InferenceRecord } from "@facilitator/inference";
import { generateGatewayKey, inferenceMessageHash, signRsaPss, teeIdOf } from "@facilitator/tee";
import { CHAIN_ID, startAuditWorld, type Anchored, type AuditWorld } from "./helpers/auditor-world.ts";

const browserPresent = hasChromium();
if (!browserPresent) console.warn(`auditor-explorer: SKIPPING the browser test: ${CHROMIUM_PATH} is absent (apt-get install -y chromium)`);

/** The explorer on a world, behind a local HTTP server, and a Chromium to open it in. */
interface Served {
  url: string;
  browser: BrowserContext;
  close(): Promise<void>;
}

async function serveExplorer(w: AuditWorld, extra: Partial<ExplorerOptions>): Promise<Served> {
  const app = express();
  app.use("/explorer", explorerRoutes({ relayAddress: w.relay, rpcUrl: w.rpcUrl, chainId: CHAIN_ID, aggregatorUrl: w.aggregatorUrl, ...extra }));
  const server = await listen(app);
  const launched = await launchChromium().catch(async (e) => {
    await server.close();
    throw e;
  });
  return {
    url: server.url,
    browser: launched.context,
    async close() {
      await launched.close();
      await server.close();
    },
  };
}

let world: AuditWorld;
let served: Served | undefined;
let baseUrl: string;
let browser: BrowserContext;
let genuine: Anchored;
/** Stands in for the facilitator's record store: the page treats its answers as claims to check. */
const lookups = new Map<string, ExplorerLookup>();

describe.skipIf(!browserPresent)("explorer page in headless Chromium", () => {
  beforeAll(async () => {
    world = await startAuditWorld();
    genuine = await world.anchorBatch(["p", "q", "r"].map((l) => world.record(`page ${l}`)));
    await world.anchorBatch([world.record("page other")]);
    served = await serveExplorer(world, { statusLookup: async (q) => lookups.get(q.toLowerCase()) });
    ({ url: baseUrl, browser } = served);
  });

  afterAll(async () => {
    await served?.close();
    await world?.stop();
  });

  async function openExplorer(): Promise<Page> {
    const page = await browser.newPage();
    const outside: string[] = [];
    page.on("request", (req) => {
      if (!req.url().startsWith(baseUrl) && !req.url().startsWith("data:")) outside.push(req.url());
    });
    page.on("pageerror", (e) => outside.push(`page error: ${e.message}`));
    (page as Page & { outside: string[] }).outside = outside;
    await page.goto(`${baseUrl}/explorer`);
    await page.locator("#batches tbody tr").first().waitFor();
    return page;
  }

  async function searchAndVerify(page: Page, query: string, resultIndex = 0): Promise<string> {
    await page.fill("#query", query);
    await page.click("#search");
    const result = page.locator(".result").nth(resultIndex);
    await result.locator("button.verify").click();
    const verdict = result.locator(".verdict");
    await verdict.waitFor();
    return (await verdict.textContent()) ?? "";
  }

  it("lists recent batches and verifies a genuine inference in the browser", async () => {
    const page = await openExplorer();
    const rows = page.locator("#batches tbody tr");
    expect(await rows.count()).toBe(2);
    expect(await rows.nth(1).locator("td").nth(0).getAttribute("title")).toBe(genuine.root);
    expect(await rows.nth(1).locator("td").nth(1).textContent()).toBe("3");
    expect(await rows.nth(1).locator("td").nth(4).textContent()).toBe(genuine.blobId);

    const verdict = await searchAndVerify(page, genuine.records[1]!.inputHash);
    expect(verdict).toBe("VERIFIED");
    const checks = await page.locator(".result .check").allTextContents();
    expect(checks.map((c) => c.split(" — ")[0])).toEqual(["leaf-hash", "proof", "on-chain-root", "anchored-at", "tx-success"]);
    expect(checks[2]).toContain(genuine.transactionHash);
    // For a person to look at the page: EXPLORER_SCREENSHOT=/path/to/file.png
    if (process.env.EXPLORER_SCREENSHOT) await page.screenshot({ path: process.env.EXPLORER_SCREENSHOT, fullPage: true });
    expect((page as Page & { outside: string[] }).outside).toEqual([]);
    await page.close();
  });

  it("finds a record by id through the facilitator's claim and verifies it", async () => {
    lookups.set(genuine.ids[2]!, { recordId: genuine.ids[2]!, status: "anchored", root: genuine.root, proof: genuine.tree.proof(2), inputHash: genuine.records[2]!.inputHash, outputHash: genuine.records[2]!.outputHash });
    const page = await openExplorer();
    expect(await searchAndVerify(page, genuine.ids[2]!)).toBe("VERIFIED");
    expect(await page.locator(".result").first().textContent()).toContain("the facilitator's records (a claim to check)");
    await page.close();
  });

  it("shows NOT VERIFIED with the failing check when the proof fits another root", async () => {
    const target = genuine.records[0]!;
    const elsewhere = world.buildBatch([target, world.record("decoy a"), world.record("decoy b")]);
    lookups.set(genuine.ids[0]!, { recordId: genuine.ids[0]!, status: "anchored", root: genuine.root, proof: elsewhere.proof(0), inputHash: target.inputHash, outputHash: target.outputHash });
    const page = await openExplorer();
    const verdict = await searchAndVerify(page, genuine.ids[0]!);
    expect(verdict).toBe(`NOT VERIFIED — failing check: proof: the proof leads to ${elsewhere.root}, not to the batch root ${genuine.root}`);
    await page.close();
  });

  it("shows NOT VERIFIED when the claimed root was never anchored by the relay", async () => {
    const records = [world.record("unanchored a"), world.record("unanchored b")];
    const tree = world.buildBatch(records);
    await world.upload(tree.dumpJson);
    const lookalike = await world.deployRelay(world.strangerKey);
    const blobId = await world.upload(tree.dumpJson);
    await world.settleBatch(tree.root, 2, blobId, { relay: lookalike, key: world.strangerKey });
    const id = `0x${"77".repeat(32)}`;
    // The leaf's fields cannot come from a relay batch, so the claim carries nothing to hash.
    lookups.set(id, { recordId: id, status: "anchored", root: tree.root, proof: tree.proof(0), inputHash: records[0]!.inputHash, outputHash: records[0]!.outputHash });
    const page = await openExplorer();
    const verdict = await searchAndVerify(page, id);
    expect(verdict).toMatch(/^NOT VERIFIED — failing check: leaf-hash: the leaf's fields are unknown/);
    await page.close();
  });
});

describe.skipIf(!browserPresent)("explorer page: a record's TEE, in headless Chromium", () => {
  let w: AuditWorld;
  let tees: LocalTees;
  let app: Served | undefined;
  const relayerKey = devKey(6); // the registry's registrar, apart from the relay's relayer
  let n = 0;

  /** A tee-gateway record signed with `pem` in the name of `teeId`, anchored in a gateway batch. */
  async function anchorGatewayRecord(teeId: Hex, pem: string): Promise<InferenceRecord> {
    const inputHash = keccak256(toHex(`tee page input ${++n}`));
    const outputHash = keccak256(toHex(`tee page output ${n}`));
    const ts = BigInt(1_700_000_000 + n);
    const signature = toHex(Buffer.from(signRsaPss(pem, inferenceMessageHash(inputHash, outputHash, ts)), "base64"));
    const record: InferenceRecord = { inputHash, outputHash, settlementType: "settle-batch", teeId, teeTimestamp: String(ts), teeSignature: signature, signatureScheme: "rsa-pss-sha256" };
    const tree = buildGatewayBatchTree([record], [recordId(record)], new Date(1_700_000_000_000 + n).toISOString());
    await w.settleBatch(tree.root, 1, await w.upload(tree.dumpJson));
    return record;
  }

  /** A TEE attestation v2 record signed by a secp256k1 key, anchored in an ordinary batch. */
  async function anchorSecpRecord(tee: { teeId: Hex; privateKey: Hex }): Promise<InferenceRecord> {
    const record = signTeeRecord(tee, { inputHash: keccak256(toHex(`tee page secp input ${++n}`)), outputHash: keccak256(toHex(`tee page secp output ${n}`)), settlementType: "settle-batch" as const, teeTimestamp: String(1_700_000_000 + n) });
    await w.anchorBatch([record]);
    return record;
  }

  beforeAll(async () => {
    w = await startAuditWorld();
    tees = await startLocalTees({
      rpcUrl: w.rpcUrl,
      chainId: CHAIN_ID,
      deployerKey: w.deployerKey,
      relayerKey,
      walrus: { publisherUrl: w.publisherUrl, aggregatorUrl: w.aggregatorUrl },
      secpKey: keccak256(toHex("explorer page secp TEE")),
    });
    app = await serveExplorer(w, {
      teeRegistry: { address: tees.registry.address, roots: [tees.registry.attestationRootPem] },
      limits: { batchRefreshMs: 100, teeCacheMs: 0 },
    });
  });

  afterAll(async () => {
    await app?.close();
    await w?.stop();
  });

  /** Opens the page, searches `record` (until the index has it) and clicks Verify; the TEE outcome. */
  async function verifyTee(record: InferenceRecord): Promise<{ page: Page; facts: Record<string, string>; verdict: string; checks: string[] }> {
    const page = await app!.browser.newPage();
    const outside: string[] = [];
    page.on("request", (req) => void (!req.url().startsWith(app!.url) && !req.url().startsWith("data:") && outside.push(req.url())));
    page.on("pageerror", (e) => outside.push(`page error: ${e.message}`));
    await page.goto(`${app!.url}/explorer`);
    await page.locator("#registry-label:not([hidden])").waitFor();
    for (let i = 0; ; i++) {
      await page.fill("#query", record.inputHash);
      await page.click("#search");
      await page.locator("#search-status").filter({ hasNotText: "Searching" }).waitFor();
      if ((await page.locator(".result").count()) > 0 || i > 50) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const result = page.locator(".result").first();
    await result.locator(".tee-fact").first().waitFor();
    const facts = Object.fromEntries(
      (await result.locator(".tee-fact").allTextContents()).map((line) => [line.slice(0, line.indexOf(": ")), line.slice(line.indexOf(": ") + 2)]),
    );
    await result.locator("button.verify").click();
    expect(await result.locator(".verification .verdict").textContent()).toBe("VERIFIED");
    const verdict = (await result.locator(".tee-verdict").textContent()) ?? "";
    const checks = await result.locator(".tee-verification .check").allTextContents();
    expect(outside).toEqual([]);
    return { page, facts, verdict, checks };
  }

  it("shows the gateway TEE of a record (type, scheme, approved measurement, PCRs, registration, attestation) and attests it in the browser", async () => {
    const record = await anchorGatewayRecord(tees.gateway.teeId, tees.gateway.privateKeyPem);
    const { page, facts, verdict, checks } = await verifyTee(record);
    expect(facts).toMatchObject({
      TEE: tees.gateway.teeId,
      type: "AWS Nitro (measurement = keccak256(PCR0 ‖ PCR1 ‖ PCR2))",
      "key scheme": "RSA-PSS-SHA256 (the tee-gateway's)",
      measurement: expect.stringMatching(new RegExp(`^${tees.registry.measurement}: approved \\(approved at block \\d+\\)$`)),
      PCR0: expect.stringMatching(/^0x[0-9a-f]{96}$/),
      registered: expect.stringMatching(/^block \d+, \d{4}-/),
      attestation: expect.stringMatching(/^verified by this explorer's server: chains to the root with SHA-256 [0-9a-f]{64}$/),
    });
    expect(await page.locator("#chain").textContent()).toContain("verifies attestation documents against the root(s) with SHA-256");
    expect(verdict).toBe("ATTESTED BY AN APPROVED ENCLAVE");
    expect(checks.map((c) => c.split(" — ")[0])).toEqual(["tee-registered", "tee-measurement", "tee-attestation", "tee-signature"]);
    expect(checks[3]).toContain("RSA-PSS signature of the record verified under the registered key, in this browser");
    expect(await page.locator(".tee-verification").textContent()).toContain(`pnpm auditor verify --input-hash ${record.inputHash}`);
    if (process.env.EXPLORER_TEE_SCREENSHOT) await page.screenshot({ path: process.env.EXPLORER_TEE_SCREENSHOT, fullPage: true });
    await page.close();
  });

  it("attests the secp256k1 TEE's record, leaving its signature to the auditor", async () => {
    const { page, facts, verdict, checks } = await verifyTee(await anchorSecpRecord(tees.secp));
    expect(facts["key scheme"]).toBe("secp256k1, EIP-712 TEE attestation v2");
    expect(verdict).toBe("ATTESTED ENCLAVE, signature left to the auditor");
    expect(checks[3]).toMatch(/^tee-signature — a secp256k1 EIP-712 signature is not checked in this browser/);
    expect(await page.locator(".tee-verification .check.skipped").count()).toBe(1);
    await page.close();
  });

  it("refuses a record signed by another key in the gateway TEE's name: tee-signature", async () => {
    const { page, verdict } = await verifyTee(await anchorGatewayRecord(tees.gateway.teeId, generateGatewayKey().privateKeyPem));
    expect(verdict).toBe("NOT ATTESTED — failing check: tee-signature: the record's RSA-PSS signature is not the registered key's");
    await page.close();
  });

  it("refuses a record of a TEE the registry never registered: tee-registered", async () => {
    const stranger = generateGatewayKey();
    const { page, facts, verdict } = await verifyTee(await anchorGatewayRecord(stranger.teeId, stranger.privateKeyPem));
    expect(facts.TEE).toBe(`${stranger.teeId}: not in the TEE registry ${tees.registry.address}`);
    expect(verdict).toBe(`NOT ATTESTED — failing check: tee-registered: TEE ${stranger.teeId} is not in the TEE registry`);
    await page.close();
  });

  it("shows hostile registry text as text, and fails a registration whose document is not on Walrus: tee-attestation", async () => {
    // A registrar's key registering behind the registrar's back, with markup for a blob id.
    const key = keccak256(toHex("explorer page hostile TEE"));
    const point = privateKeyToAccount(key).publicKey;
    const teeId = teeIdOf(Buffer.from(point.slice(2), "hex"));
    const hostile = `<img src=x onerror="window.__pwned=1">`;
    const registry = new TeeRegistryClient({ rpcUrl: w.rpcUrl, chainId: CHAIN_ID, address: tees.registry.address, writerKey: relayerKey, pollingIntervalMs: 50 });
    await registry.write({ functionName: "register", args: [teeId, 1, 1, point, tees.registry.measurement, toHex(hostile), keccak256(toHex("no such document"))] });
    const { page, facts, verdict } = await verifyTee(await anchorSecpRecord({ teeId, privateKey: key }));
    expect(facts["attestation document"]).toContain(`Walrus blob ${hostile}`);
    expect(facts.attestation).toMatch(/^DOES NOT VERIFY \(this explorer's server\): the attestation document \(blob <img/);
    expect(verdict).toMatch(/^NOT ATTESTED — failing check: tee-attestation: /);
    expect(await page.locator(".result img").count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    await page.close();
  });

  it("after the image is revoked: shows it revoked, still attests a record anchored before, refuses one anchored after: tee-measurement", async () => {
    const before = await anchorSecpRecord(tees.secp);
    const admin = new TeeRegistryClient({ rpcUrl: w.rpcUrl, chainId: CHAIN_ID, address: tees.registry.address, writerKey: w.deployerKey, pollingIntervalMs: 50 });
    await admin.write({ functionName: "revokeMeasurement", args: [1, tees.registry.measurement] });
    const earlier = await verifyTee(before);
    expect(earlier.facts.measurement).toMatch(/: revoked \(approved at block \d+, revoked at block \d+\)$/);
    expect(earlier.verdict).toBe("ATTESTED ENCLAVE, signature left to the auditor");
    expect(earlier.checks[1]).toMatch(/revoked later, at block \d+/);
    await earlier.page.close();
    const later = await verifyTee(await anchorSecpRecord(tees.secp));
    expect(later.verdict).toMatch(/^NOT ATTESTED — failing check: tee-measurement: measurement 0x[0-9a-f]{64} was revoked at block \d+, before the anchor/);
    await later.page.close();
  });
});
