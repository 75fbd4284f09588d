/**
 * The bazaar discovery extension end to end, with the official 2.27 packages as third parties: an
 * `@x402/express` resource server declares its routes (`declareDiscoveryExtension` and the bazaar
 * server extension), an `@x402/fetch` client pays, the facilitator catalogues what settled, and an
 * agent using `@x402/extensions`' `withBazaar` client finds the resources and pays one it found.
 * Then hostile declarations sent straight to /settle: each refused with its reason, nothing stored.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { privateKeyToAccount } from "viem/accounts";
import type { Address } from "viem";
import { x402Client } from "@x402/core/client";
import { HTTPFacilitatorClient } from "@x402/core/server";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { ExactEvmScheme } from "@x402/evm/exact/server";
import { x402ResourceServer } from "@x402/express";
import { bazaarResourceServerExtension, declareDiscoveryExtension, withBazaar } from "@x402/extensions/bazaar";
import { wrapFetchWithPayment } from "@x402/fetch";
import { startRedis, type RedisServer } from "@facilitator/devnet";
import { postJson, type Listening } from "@facilitator/server/testing";
import { startFacilitatorOnWorld, type FacilitatorFixture, type RunningFacilitator } from "./helpers/facilitator.ts";
import { evmPaymentBody } from "./helpers/payments.ts";
import { evmAccepts, startPaidServer } from "./helpers/resource-server.ts";

let fx: FacilitatorFixture;
let shop: Listening;
const extensionResponses: unknown[] = [];

const n = () => fx.world.networks["base-sepolia"]!;
const discovery = (url = fx.url) => withBazaar(new HTTPFacilitatorClient({ url })).extensions.bazaar;
const decodeHeader = (value: string | null) => (value === null ? undefined : JSON.parse(Buffer.from(value, "base64").toString()));

function payingFetch() {
  const client = new x402Client();
  registerExactEvmScheme(client, { signer: privateKeyToAccount(n().payer.privateKey) });
  client.setSpendControls(false); // the local token is not one of the client's default assets
  return wrapFetchWithPayment(fetch, client);
}

/** A route charging `amount` that declares itself to the bazaar with its service metadata. */
const declaredRoute = (amount: string, description: string, serviceName: string, tags: string[], declaration: Parameters<typeof declareDiscoveryExtension>[0]) => ({
  accepts: evmAccepts(n(), amount),
  description,
  mimeType: "application/json",
  serviceName,
  tags,
  extensions: declareDiscoveryExtension(declaration),
});

beforeAll(async () => {
  // Small quotas, so that "thousands of routes" is a handful here; the limits themselves are the unit tests'.
  fx = await startFacilitatorOnWorld({ networks: ["base-sepolia"], config: { bazaar: { enabled: true, ttlMs: 3_600_000, maxRoutesPerPayTo: 4, maxRoutesPerPayer: 50, maxResources: 100 } } });
  const resourceServer = new x402ResourceServer(new HTTPFacilitatorClient({ url: fx.url }))
    .register(n().caip2 as `${string}:${string}`, new ExactEvmScheme())
    .registerExtension(bazaarResourceServerExtension)
    .onAfterSettle(async (ctx) => void extensionResponses.push((ctx.result as { extensionResponses?: unknown }).extensionResponses));
  shop = await startPaidServer(
    {
      "GET /weather/:city": declaredRoute("1000", "Weather forecast by city", "Skyline Weather", ["weather", "forecast"], {
        input: { units: "metric" },
        inputSchema: { properties: { units: { type: "string" } } },
        output: { example: { city: "Paris", temperature: 21 } },
      }),
      "POST /inference/chat": declaredRoute("2500", "LLM chat completion, TEE-attested inference", "Grid Inference", ["llm", "inference"], {
        bodyType: "json",
        input: { prompt: "Hello" },
        inputSchema: { properties: { prompt: { type: "string" } }, required: ["prompt"] },
        output: { example: { completion: "Hi!" } },
      }),
    },
    resourceServer,
    (app) => {
      app.get("/weather/:city", (req, res) => void res.json({ city: req.params.city, temperature: 21 }));
      app.post("/inference/chat", (_req, res) => void res.json({ completion: "Hi!" }));
    },
  );
});
afterAll(async () => {
  await shop?.close();
  await fx?.stop();
});

describe("official resource server, client and discovery client", () => {
  it("lists bazaar among the facilitator's extensions", async () => {
    const supported = await new HTTPFacilitatorClient({ url: fx.url }).getSupported();
    expect(supported.extensions).toContain("bazaar");
  });

  it("catalogues a paid route under its template and answers EXTENSION-RESPONSES success", async () => {
    const pay = payingFetch();
    expect((await pay(`${shop.url}/weather/paris`)).status).toBe(200);
    expect((await pay(`${shop.url}/weather/rome`)).status).toBe(200);
    expect(extensionResponses).toEqual([{ bazaar: { status: "success" } }, { bazaar: { status: "success" } }]);

    const { items, pagination } = await discovery().listResources({ type: "http", network: n().caip2, payTo: n().payTo });
    expect(pagination).toMatchObject({ total: 1, offset: 0 });
    expect(items[0]).toMatchObject({
      resource: `${shop.url}/weather/:city`,
      type: "http",
      x402Version: 2,
      description: "Weather forecast by city",
      serviceName: "Skyline Weather",
      tags: ["weather", "forecast"],
      accepts: [{ scheme: "exact", network: n().caip2, amount: "1000", payTo: n().payTo }],
      extensions: { bazaar: { routeTemplate: "/weather/:city", info: { input: { type: "http", method: "GET" } } } },
    });
    expect(Date.parse(items[0]!.lastUpdated)).toBeGreaterThan(Date.now() - 60_000);
  });

  it("lets an agent find an inference endpoint by searching, and pay the resource it found", async () => {
    // Someone paid it first: only a settled payment brings a resource into the catalogue.
    expect(await discovery().search({ query: "inference" })).toMatchObject({ resources: [] });
    const first = await payingFetch()(`${shop.url}/inference/chat`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt: "Hello" }) });
    expect(first.status).toBe(200);

    const found = await discovery().search({ query: "LLM inference chat", type: "http" });
    expect(found.resources.map((r) => r.resource)).toEqual([`${shop.url}/inference/chat`]);
    const [endpoint] = found.resources;
    expect(endpoint!.extensions).toMatchObject({ bazaar: { info: { input: { method: "POST", bodyType: "json", body: { prompt: "Hello" } } } } });
    const paid = await payingFetch()(endpoint!.resource, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt: "Found you" }) });
    expect(paid.status).toBe(200);
    expect(await paid.json()).toEqual({ completion: "Hi!" });

    // and the list pages through both resources
    const page1 = await discovery().listResources({ limit: 1 });
    const page2 = await discovery().listResources({ limit: 1, offset: 1 });
    expect(page1.pagination.total).toBe(2);
    expect([...page1.items, ...page2.items].map((i) => i.resource).sort()).toEqual([`${shop.url}/inference/chat`, `${shop.url}/weather/:city`]);
  });
});

describe("hostile declarations sent straight to /verify and /settle", () => {
  /** A real payment of 1 unit from the world's payer, carrying `bazaar` and `resource` as a payer may forge them. */
  async function declaring(bazaar: unknown, resource: Record<string, unknown> = {}, payTo?: Address) {
    const { body } = await evmPaymentBody(n(), 1n, { payTo });
    return { ...body, paymentPayload: { ...body.paymentPayload, resource: { url: `${shop.url}/forged`, ...resource }, extensions: { bazaar } } };
  }
  const validDeclaration = (path: string) => {
    const declared = declareDiscoveryExtension({ output: { example: { ok: true } } }).bazaar;
    return bazaarResourceServerExtension.enrichDeclaration!(declared, { method: "GET", routePattern: path, adapter: { getPath: () => path } } as never);
  };
  const catalogued = async () => (await discovery().listResources({ limit: 500 })).items.map((i) => i.resource);

  it.each([
    ["a 40 KB description", { description: "d".repeat(40_000) }, "description_too_long"],
    ["a javascript: resource URL", { url: "javascript:alert(document.cookie)" }, "resource_url_invalid"],
  ])("settles the payment but refuses to catalogue %s, with the reason in EXTENSION-RESPONSES", async (_name, resource, reason) => {
    const before = await catalogued();
    const res = await postJson(`${fx.url}/settle`, await declaring(validDeclaration("/forged"), resource));
    expect(await res.json()).toMatchObject({ success: true });
    expect(decodeHeader(res.headers.get("extension-responses"))).toEqual({ bazaar: { status: "rejected", rejectedReason: expect.stringMatching(new RegExp(`^${reason}: `)) } });
    expect(await catalogued()).toEqual(before);
  });

  it("refuses a bad declaration already at /verify, before any money moves; a good one hears nothing there", async () => {
    const bad = await postJson(`${fx.url}/verify`, await declaring({ info: { input: { type: "http", method: "TRACE" } }, schema: {} }));
    expect(await bad.json()).toMatchObject({ isValid: true });
    expect(decodeHeader(bad.headers.get("extension-responses"))).toMatchObject({ bazaar: { status: "rejected", rejectedReason: expect.stringMatching(/^method_invalid: /) } });
    const good = await postJson(`${fx.url}/verify`, await declaring(validDeclaration("/fine")));
    expect(good.headers.get("extension-responses")).toBeNull();
  });

  it("refuses a payment to oneself: it proves nobody pays for the resource", async () => {
    const res = await postJson(`${fx.url}/settle`, await declaring(validDeclaration("/self"), { url: `${shop.url}/self` }, n().payer.address));
    expect(await res.json()).toMatchObject({ success: true });
    expect(decodeHeader(res.headers.get("extension-responses"))).toMatchObject({ bazaar: { status: "rejected", rejectedReason: expect.stringMatching(/^self_payment: /) } });
    expect(await catalogued()).not.toContain(`${shop.url}/self`);
  });

  it("stops a flood of fake routes to one payee at its quota, each refusal with its reason", async () => {
    // The payee already has two resources (weather, chat): two more fit under its quota of 4.
    const statuses: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await postJson(`${fx.url}/settle`, await declaring(validDeclaration(`/fake/${i}`), { url: `${shop.url}/fake/${i}` }));
      const header = decodeHeader(res.headers.get("extension-responses"));
      statuses.push(header.bazaar.status === "success" ? "success" : header.bazaar.rejectedReason.split(":")[0]);
    }
    expect(statuses).toEqual(["success", "success", "payto_route_limit", "payto_route_limit", "payto_route_limit"]);
    expect((await discovery().listResources({ payTo: n().payTo })).pagination.total).toBe(4);
  });

  it("serves script a payer put in a field as escaped JSON data, never as markup", async () => {
    // Another payee: the first one's quota is full.
    const script = '<script>alert("x")</script>';
    const other = "0x00000000000000000000000000000000000b0b01" as Address;
    const res = await postJson(`${fx.url}/settle`, await declaring(validDeclaration("/xss"), { url: `${shop.url}/xss`, description: script, serviceName: "<b>x</b>" }, other));
    expect(decodeHeader(res.headers.get("extension-responses"))).toEqual({ bazaar: { status: "success" } });
    const raw = await fetch(`${fx.url}/discovery/search?query=alert`);
    expect(raw.headers.get("content-type")).toMatch(/^application\/json/);
    expect(raw.headers.get("x-content-type-options")).toBe("nosniff");
    const text = await raw.text();
    expect(text).not.toContain("<script>");
    expect(JSON.parse(text).resources[0]).toMatchObject({ description: script, serviceName: "<b>x</b>" });
  });

  it("answers a malformed query with 400 and its reason, which the official client reports", async () => {
    const res = await fetch(`${fx.url}/discovery/resources?limit=-5`);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: "invalid_query", message: "limit must be a whole number of at least 1" });
    await expect(discovery().search({ query: "" })).rejects.toThrow(/400.*query is required/);
  });
});

describe("the catalogue shared through Redis", () => {
  let redis: RedisServer;
  let a: RunningFacilitator;
  let b: RunningFacilitator;
  beforeAll(async () => {
    redis = await startRedis({ appendOnly: true });
    const shared = { networks: ["base-sepolia"], world: fx.world, config: { redisUrl: redis.url } };
    a = await startFacilitatorOnWorld(shared);
    b = await startFacilitatorOnWorld(shared);
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await redis?.stop();
  });

  it("serves from one process what another catalogued", async () => {
    const { body } = await evmPaymentBody(n(), 1n);
    const declared = bazaarResourceServerExtension.enrichDeclaration!(declareDiscoveryExtension({}).bazaar, { method: "GET", routePattern: "/shared", adapter: { getPath: () => "/shared" } } as never);
    const settle = { ...body, paymentPayload: { ...body.paymentPayload, resource: { url: "https://shared.example/shared", description: "shared catalogue" }, extensions: { bazaar: declared } } };
    const res = await postJson(`${a.url}/settle`, settle);
    expect(decodeHeader(res.headers.get("extension-responses"))).toEqual({ bazaar: { status: "success" } });
    const found = await discovery(b.url).search({ query: "shared catalogue" });
    expect(found.resources.map((r) => r.resource)).toEqual(["https://shared.example/shared"]);
  });
});
