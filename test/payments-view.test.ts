/**
 * Issue 16's "done when", end to end with the official 2.27 packages as third parties: an
 * `@x402/express` resource server declares an inference endpoint through the bazaar extension and
 * reports each request's usage on /settle; an agent finds the endpoint with `@x402/extensions`'
 * `withBazaar` client and pays it with `@x402/fetch`; the payee's webhook receiver (failing its first
 * attempt) gets signed notices; and the operator sees the payment, the payee's usage and the webhook
 * delivery on the payments page in headless Chromium, and in /usage.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { privateKeyToAccount } from "viem/accounts";
import { x402Client } from "@x402/core/client";
import { HTTPFacilitatorClient } from "@x402/core/server";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { ExactEvmScheme } from "@x402/evm/exact/server";
import { x402ResourceServer } from "@x402/express";
import { bazaarResourceServerExtension, declareDiscoveryExtension, withBazaar } from "@x402/extensions/bazaar";
import { wrapFetchWithPayment } from "@x402/fetch";
import { CHROMIUM_PATH, hasChromium, launchChromium, type BrowserContext, type Page } from "@facilitator/auditor/testing";
import { startEvmWorld, waitFor, type EvmWorld } from "@facilitator/devnet";
import { verifyNotice, WEBHOOK_HEADERS, type UsageMetadata } from "@facilitator/payments";
import { loadConfig } from "@facilitator/server";
import { webhookReceiver, type Listening, type WebhookReceiver } from "@facilitator/server/testing";
import { startFacilitatorOnWorld, type FacilitatorFixture } from "./helpers/facilitator.ts";
import { evmAccepts, startPaidServer } from "./helpers/resource-server.ts";

const browserPresent = hasChromium();
if (!browserPresent) console.warn(`payments-view: SKIPPING the browser checks: ${CHROMIUM_PATH} is absent (apt-get install -y chromium)`);

const OPERATOR_KEY = "operator-key-0123456789abcdef";
const SECRET = "whsec_payee_0123456789abcdef";
/** What the model name says is markup a payer or resource server could send: the page must show it as text. */
const HOSTILE_MODEL = '<img src=x onerror="document.title=1">llama';

let world: EvmWorld;
let fx: FacilitatorFixture;
let shop: Listening;
let hook: WebhookReceiver;
let browser: BrowserContext | undefined;
let closeBrowser: (() => Promise<void>) | undefined;
/** The usage the resource server reports on its next /settle (what the route handler just measured). */
let nextUsage: UsageMetadata | undefined;

const n = () => fx.world.networks["base-sepolia"]!;
const payee = () => n().payTo.toLowerCase();
const operator = { authorization: `Bearer ${OPERATOR_KEY}` };
const getJson = async (path: string, headers: Record<string, string> = operator) => {
  const res = await fetch(`${fx.url}${path}`, { headers });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
};

function payingFetch() {
  const client = new x402Client();
  registerExactEvmScheme(client, { signer: privateKeyToAccount(n().payer.privateKey) });
  client.setSpendControls(false); // the local token is not one of the client's default assets
  return wrapFetchWithPayment(fetch, client);
}


beforeAll(async () => {
  hook = await webhookReceiver((i) => (i === 0 ? 503 : 204)); // the receiver is down for the first attempt
  world = await startEvmWorld({ networks: ["base-sepolia"] });
  fx = await startFacilitatorOnWorld({
    world,
    config: {
      bazaar: { enabled: true, ttlMs: 3_600_000, maxRoutesPerPayTo: 10, maxRoutesPerPayer: 10, maxResources: 100 },
      payments: {
        retentionMs: 7 * 86_400_000,
        webhooks: [{ payTo: world.networks["base-sepolia"]!.payTo.toLowerCase(), url: `${hook.url}/x402/notices`, secret: SECRET }],
        delivery: { baseMs: 100, maxMs: 400, maxAttempts: 10, timeoutMs: 2_000, allowInternal: true },
      },
      tee: loadConfig({ OPERATOR_API_KEY: OPERATOR_KEY }).tee,
    },
  });
  // The resource server reports usage on /settle the way an official client can: a settle header.
  const facilitator = new HTTPFacilitatorClient({
    url: fx.url,
    createAuthHeaders: async () => ({
      verify: {},
      settle: nextUsage ? { "x-usage-metadata": Buffer.from(JSON.stringify(nextUsage)).toString("base64") } : ({} as Record<string, string>),
      supported: {},
    }),
  });
  const resourceServer = new x402ResourceServer(facilitator).register(n().caip2 as `${string}:${string}`, new ExactEvmScheme()).registerExtension(bazaarResourceServerExtension);
  shop = await startPaidServer(
    {
      "POST /inference/chat": {
        accepts: evmAccepts(n(), "2500"),
        description: "LLM chat completion, TEE-attested inference",
        mimeType: "application/json",
        serviceName: "Grid Inference",
        tags: ["llm", "inference"],
        extensions: declareDiscoveryExtension({ bodyType: "json", input: { prompt: "Hello" }, inputSchema: { properties: { prompt: { type: "string" } }, required: ["prompt"] }, output: { example: { completion: "Hi!" } } }),
      },
    },
    resourceServer,
    (app) => {
      app.post("/inference/chat", (_req, res) => {
        nextUsage = { model: HOSTILE_MODEL, inputTokens: 12, outputTokens: 30, cost: "0.0021", sessionId: "session-1", streaming: false };
        res.json({ completion: "Hi!" });
      });
    },
  );
  if (browserPresent) ({ context: browser, close: closeBrowser } = await launchChromium());
});

afterAll(async () => {
  await closeBrowser?.();
  await shop?.close();
  await fx?.stop();
  await world?.stop();
  await hook?.close();
});

describe("an agent finds a declared inference endpoint, pays it, and the operator sees it", () => {
  let transactions: string[] = [];

  it("the agent finds the endpoint through the official discovery client and pays it", async () => {
    const chat = (pay: typeof fetch) => pay(`${shop.url}/inference/chat`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt: "Hello" }) });
    // Only a settled payment brings a resource into the catalogue: someone pays first.
    expect((await chat(payingFetch())).status).toBe(200);
    const found = await withBazaar(new HTTPFacilitatorClient({ url: fx.url })).extensions.bazaar.search({ query: "LLM inference", type: "http" });
    expect(found.resources.map((r) => r.resource)).toEqual([`${shop.url}/inference/chat`]);
    const paid = await payingFetch()(found.resources[0]!.resource, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt: "Found you" }) });
    expect(paid.status).toBe(200);

    const { body } = await waitFor(async () => {
      const r = await getJson("/explorer/payments/api/payments?network=eip155:84532");
      return r.body.payments?.length === 2 ? r : undefined;
    }, "both payments in the record");
    transactions = body.payments.map((p: { transaction: string }) => p.transaction);
    expect(body.payments[0]).toMatchObject({
      network: n().caip2, scheme: "exact", payer: n().payer.address.toLowerCase(), payTo: payee(), amount: "2500", asset: n().asset.address.toLowerCase(),
      outcome: "success", transaction: expect.stringMatching(/^0x[0-9a-f]{64}$/), latencyMs: expect.any(Number),
      usage: { model: HOSTILE_MODEL, inputTokens: 12, outputTokens: 30, cost: "0.0021", sessionId: "session-1", streaming: false },
    });
  });

  it("each payment's payee gets a signed notice, retried after the receiver's failure, one id per payment", async () => {
    await waitFor(async () => hook.got.filter((g) => g.status === 204).length === 2, "both notices delivered");
    const delivered = hook.got.filter((g) => g.status === 204);
    expect(hook.got.length).toBe(3); // one failed attempt, then one success per notice
    expect(new Set(delivered.map((g) => g.headers[WEBHOOK_HEADERS.id])).size).toBe(2);
    // the notice that met the failure was sent again, under the same id, and delivered
    const retried = hook.got[0]!.headers[WEBHOOK_HEADERS.id];
    expect(hook.got.filter((g) => g.headers[WEBHOOK_HEADERS.id] === retried).map((g) => g.status)).toEqual([503, 204]);
    for (const g of hook.got) {
      const check = verifyNotice({ secret: SECRET, body: g.body, timestamp: String(g.headers[WEBHOOK_HEADERS.timestamp]), signature: String(g.headers[WEBHOOK_HEADERS.signature]), nowSeconds: Math.floor(Date.now() / 1000) });
      expect(check).toEqual({ ok: true });
    }
    const notices = delivered.map((g) => JSON.parse(g.body));
    expect(notices.map((x) => x.payment.transaction).sort()).toEqual([...transactions].sort());
    expect(notices[0]).toMatchObject({ type: "payment.succeeded", payment: { payTo: payee(), amount: "2500", outcome: "success", usageMetadata: { inputTokens: 12 } } });
  });

  it("/usage sums the payee's payments, amounts and usage per day, for the operator only", async () => {
    expect((await getJson(`/usage?days=1&payTo=${n().payTo}`, {})).status).toBe(401);
    expect((await getJson(`/usage?days=1`, { authorization: "Bearer wrong-key-0123456789" })).status).toBe(401);
    expect(await getJson(`/usage?days=0`)).toMatchObject({ status: 400, body: { error: "invalid_query" } });
    const { status, body } = await getJson(`/usage?days=1&payTo=${n().payTo}`);
    expect(status).toBe(200);
    expect(body.payees).toHaveLength(1);
    expect(body.payees[0]).toMatchObject({
      payTo: payee(),
      days: [{ payments: 2, success: 2, failed: 0, amounts: [{ network: n().caip2, asset: n().asset.address.toLowerCase(), amount: "5000" }], usage: { reports: 2, inputTokens: 24, outputTokens: 60, cost: "0.0042" } }],
    });
  });

  it.skipIf(!browserPresent)("the payments page shows the payments, the payee's totals and the webhook deliveries, escaped", async () => {
    const page: Page = await browser!.newPage();
    const problems: string[] = [];
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    page.on("dialog", (d) => problems.push(`dialog: ${d.message()}`));
    page.on("request", (r) => void (r.url().startsWith(fx.url) || problems.push(`outside request: ${r.url()}`)));
    await page.goto(`${fx.url}/explorer/payments`);
    await page.fill("#key", OPERATOR_KEY);
    await page.click("#open");
    const rows = page.locator("#payments tbody tr.payment");
    await rows.nth(1).waitFor();
    expect(await rows.count()).toBe(2);
    for (const tx of transactions) expect(await page.locator("#payments td.transaction", { hasText: tx.slice(0, 10) }).count()).toBe(1);
    const first = rows.first();
    expect(await first.locator("td.outcome").textContent()).toBe("success");
    expect(await first.locator("td.usage").textContent()).toContain(HOSTILE_MODEL); // the markup as text
    expect(await page.locator("#payments img").count()).toBe(0);
    const webhooks = await page.locator("#payments .webhook").allTextContents();
    expect(webhooks.sort()).toEqual([expect.stringMatching(/^delivered \(1 attempt, HTTP 204\)/), expect.stringMatching(/^delivered \(2 attempts, HTTP 204\) to http:\/\/127\.0\.0\.1:\d+\/x402\/notices$/)].sort());
    const total = page.locator("#totals tbody tr.total");
    expect(await total.count()).toBe(1);
    expect(await total.first().locator("td.payee").textContent()).toBe(payee());
    expect(await total.first().locator("td.amounts").textContent()).toMatch(/^5000 of /);
    expect(await page.locator("#pending tbody tr").count()).toBe(0);
    expect(await page.title()).toBe("Payments");
    expect(problems).toEqual([]);
    await page.close();
  });

  it.skipIf(!browserPresent)("the page shows nothing without the operator key", async () => {
    const page: Page = await browser!.newPage();
    await page.goto(`${fx.url}/explorer/payments`);
    await page.fill("#key", "not-the-key-0123456789");
    await page.click("#open");
    await page.locator("#status", { hasText: "Could not load" }).waitFor();
    expect(await page.locator("#payments tbody tr").count()).toBe(0);
    await page.close();
  });
});
