/**
 * The explorer page in a real headless Chromium: the batch list, the search, and the Verify
 * button's verdict, computed in the browser against the root read from the chain (anvil, a real
 * SettlementRelay, the local Walrus-compatible service).
 */
import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { explorerRoutes, type ExplorerLookup } from "../packages/server/src/routes/explorer.ts";
import { CHROMIUM_PATH, hasChromium, launchChromium, type BrowserContext, type Page } from "@facilitator/auditor/testing";
import { listen, type Listening } from "@facilitator/server/testing";
import { CHAIN_ID, startAuditWorld, type Anchored, type AuditWorld } from "./helpers/auditor-world.ts";

const browserPresent = hasChromium();
if (!browserPresent) console.warn(`auditor-explorer: SKIPPING the browser test: ${CHROMIUM_PATH} is absent (apt-get install -y chromium)`);

let world: AuditWorld;
let server: Listening;
let baseUrl: string;
let browser: BrowserContext;
let closeBrowser: (() => Promise<void>) | undefined;
let genuine: Anchored;
/** Stands in for the facilitator's record store: the page treats its answers as claims to check. */
const lookups = new Map<string, ExplorerLookup>();

describe.skipIf(!browserPresent)("explorer page in headless Chromium", () => {
  beforeAll(async () => {
    world = await startAuditWorld();
    genuine = await world.anchorBatch(["p", "q", "r"].map((l) => world.record(`page ${l}`)));
    await world.anchorBatch([world.record("page other")]);
    const app = express();
    app.use(
      "/explorer",
      explorerRoutes({
        relayAddress: world.relay,
        rpcUrl: world.rpcUrl,
        chainId: CHAIN_ID,
        aggregatorUrl: world.aggregatorUrl,
        statusLookup: async (q) => lookups.get(q.toLowerCase()),
      }),
    );
    server = await listen(app);
    baseUrl = server.url;
    const launched = await launchChromium();
    browser = launched.context;
    closeBrowser = launched.close;
  });

  afterAll(async () => {
    await closeBrowser?.();
    await server?.close();
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
