/**
 * The operational blocks wired into the real HTTP app the way the lead wires them (paymentGuards and
 * routers of createApp), exercised by the official x402 v2 packages: API keys sent through
 * `createAuthHeaders`, refusals that change nothing on chain, 429 with Retry-After, and the metrics a
 * paid request leaves behind.
 */
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { x402Client } from "@x402/core/client";
import { HTTPFacilitatorClient } from "@x402/core/server";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { ExactEvmScheme } from "@x402/evm/exact/server";
import { x402ResourceServer } from "@x402/express";
import { wrapFetchWithPayment } from "@x402/fetch";
import { listen, postJson, type Listening } from "@facilitator/server/testing";
import { createApp } from "../packages/server/src/app.ts";
import { createLogger } from "../packages/server/src/logger.ts";
import {
  apiKeyGuard, createMetrics, MemoryRateLimitStore, metricsRouter, rateLimit, readinessRouter, recordPaymentOutcome, rpcCheck,
  type Metrics,
} from "../packages/server/src/ops/index.ts";
import { startFacilitatorOnWorld, type FacilitatorFixture } from "./helpers/facilitator.ts";
import { chainView } from "./helpers/chain.ts";
import { evmPaymentBody } from "./helpers/payments.ts";
import { evmAccepts, startPaidServer } from "./helpers/resource-server.ts";

const API_KEY = "ops-test-key-7f3a9c";
let fx: FacilitatorFixture;
const servers: Listening[] = [];

beforeAll(async () => {
  fx = await startFacilitatorOnWorld({ networks: ["base-sepolia"] });
});
afterAll(async () => {
  for (const s of servers) await s.close();
  await fx?.stop();
});

/** A server started for this suite, closed after it; its URL. */
async function serve(started: Listening | Promise<Listening>): Promise<string> {
  const server = await started;
  servers.push(server);
  return server.url;
}

/** The facilitator's own Facilitator behind a guarded app, as compose.ts would build it. */
async function guardedFacilitator(perMinute: number): Promise<{ url: string; metrics: Metrics }> {
  const metrics = createMetrics({ processMetrics: false, ledgerUnconfirmed: () => fx.services.ledger.countUnconfirmed() });
  const n = fx.world.networks["base-sepolia"]!;
  const app = createApp({
    facilitator: fx.services.facilitator,
    logger: createLogger("silent"),
    paymentGuards: [recordPaymentOutcome(metrics), apiKeyGuard([API_KEY]), rateLimit({ perMinute, store: new MemoryRateLimitStore() })],
    routers: [metricsRouter(metrics), readinessRouter([rpcCheck("rpc base-sepolia", n.rpcUrl, { chainId: n.chainId })])],
  });
  return { url: await serve(listen(app)), metrics };
}

const withKey = (key: string) => async () => {
  const h = { Authorization: `Bearer ${key}` };
  return { verify: h, settle: h, supported: h };
};

async function paymentBody() {
  const { body } = await evmPaymentBody(fx.world.networks["base-sepolia"]!, 1000n);
  return { paymentPayload: body.paymentPayload, requirements: body.paymentRequirements };
}

describe("API keys through the official v2 client", () => {
  let url: string;
  let metrics: Metrics;
  beforeAll(async () => {
    ({ url, metrics } = await guardedFacilitator(1000));
  });

  it("a resource server sending the key via createAuthHeaders gets paid end to end", async () => {
    const n = fx.world.networks["base-sepolia"]!;
    const chain = chainView(n);
    const facilitator = new HTTPFacilitatorClient({ url, createAuthHeaders: withKey(API_KEY) });
    const base = await serve(
      startPaidServer(
        { "GET /report": { accepts: evmAccepts(n, "1500"), description: "a paid report" } },
        new x402ResourceServer(facilitator).register(n.caip2 as `${string}:${string}`, new ExactEvmScheme()),
        (app) => app.get("/report", (_req, res) => void res.json({ report: "paid content" })),
      ),
    );

    const client = new x402Client();
    registerExactEvmScheme(client, { signer: privateKeyToAccount(n.payer.privateKey) });
    client.setSpendControls(false); // local tokens are not the default assets the client knows
    const before = await chain.balanceOf(n.payTo);
    const res = await wrapFetchWithPayment(fetch, client)(`${base}/report`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ report: "paid content" });
    expect(await chain.balanceOf(n.payTo)).toBe(before + 1500n);

    const text = await (await fetch(`${url}/metrics`)).text();
    expect(text).toContain('x402_verify_requests_total{network="base-sepolia",outcome="valid"} 1');
    expect(text).toContain('x402_settle_requests_total{network="base-sepolia",outcome="success"} 1');
    expect(text).toContain("x402_ledger_unconfirmed 0");
  });

  it("without a key, or with a wrong one, the client throws 401 unauthorized and nothing is broadcast", async () => {
    const n = fx.world.networks["base-sepolia"]!;
    const chain = chainView(n);
    const { paymentPayload, requirements } = await paymentBody();
    const sentBefore = await chain.txCount(n.facilitatorAddress);

    const anonymous = new HTTPFacilitatorClient({ url });
    await expect(anonymous.verify(paymentPayload as never, requirements as never)).rejects.toMatchObject({ statusCode: 401, invalidReason: "unauthorized" });
    const wrong = new HTTPFacilitatorClient({ url, createAuthHeaders: withKey("not-the-key") });
    await expect(wrong.settle(paymentPayload as never, requirements as never)).rejects.toMatchObject({ statusCode: 401, errorReason: "unauthorized" });

    expect(await chain.txCount(n.facilitatorAddress)).toBe(sentBefore);
    // The same payment, now with the key, settles: the refusals consumed nothing.
    const keyed = new HTTPFacilitatorClient({ url, createAuthHeaders: withKey(API_KEY) });
    expect(await keyed.settle(paymentPayload as never, requirements as never)).toMatchObject({ success: true });
    const text = await metrics.registry.metrics();
    expect(text).toContain('x402_verify_requests_total{network="unknown",outcome="unauthorized"} 1');
    expect(text).toContain('x402_settle_requests_total{network="unknown",outcome="unauthorized"} 1');
  });

  it("/ready reports the chain, and tells an anonymous caller only the status", async () => {
    const res = await fetch(`${url}/ready`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ready" });
  });
});

describe("rate limits through the official v2 client", () => {
  it("refuses past the limit with 429 and Retry-After, in the protocol shape the client reads", async () => {
    const { url } = await guardedFacilitator(2);
    const client = new HTTPFacilitatorClient({ url, createAuthHeaders: withKey(API_KEY) });
    const { paymentPayload, requirements } = await paymentBody();
    expect(await client.verify(paymentPayload as never, requirements as never)).toMatchObject({ isValid: true });
    expect(await client.verify(paymentPayload as never, requirements as never)).toMatchObject({ isValid: true });
    await expect(client.verify(paymentPayload as never, requirements as never)).rejects.toMatchObject({ statusCode: 429, invalidReason: "rate_limited" });
    const raw = await postJson(`${url}/verify`, { x402Version: 2, paymentPayload, paymentRequirements: requirements }, { authorization: `Bearer ${API_KEY}` });
    expect(raw.status).toBe(429);
    expect(Number(raw.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
  });
});
