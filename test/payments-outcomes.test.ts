/**
 * The payments record and its webhooks through the whole facilitator on a local chain: a payment
 * answered `settlement_pending` and collected later by the facilitator itself, its notice sent then;
 * a notice carried across a restart of the facilitator between attempts; usageMetadata that breaks the
 * rules refused before any money moves; and one record shared by two processes through Redis.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { evmWorldOverrides, startEvmWorld, startRedis, waitFor, type EvmWorld, type RedisServer } from "@facilitator/devnet";
import { verifyNotice, WEBHOOK_HEADERS } from "@facilitator/payments";
import { composeServices, createLogger, loadConfig, type Config, type Services } from "@facilitator/server";
import { postJson, webhookReceiver, type WebhookReceiver } from "@facilitator/server/testing";
import { chainView, nodeRpc } from "./helpers/chain.ts";
import { evmPaymentBody } from "./helpers/payments.ts";

const OPERATOR_KEY = "operator-key-0123456789abcdef";
const SECRET = "whsec_payee_0123456789abcdef";

let world: EvmWorld;
let hook: WebhookReceiver;
const dirs: string[] = [];
const running: Services[] = [];
const n = () => world.networks["base-sepolia"]!;

beforeAll(async () => {
  [world, hook] = await Promise.all([startEvmWorld({ networks: ["base-sepolia"] }), webhookReceiver()]);
});
afterAll(async () => {
  for (const s of running) await s.close().catch(() => undefined);
  await Promise.all([world?.stop(), hook?.close()]);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const payments = (over: Partial<Config["payments"]["delivery"]> = {}): Config["payments"] => ({
  retentionMs: 86_400_000,
  webhooks: [{ payTo: n().payTo.toLowerCase(), url: `${hook.url}/hooks`, secret: SECRET }],
  delivery: { baseMs: 100, maxMs: 400, maxAttempts: 20, timeoutMs: 2_000, allowInternal: true, ...over },
});

/** The facilitator on the world, its state in `dataDir` (kept across a restart), listening on a free port. */
async function facilitator(dataDir: string, config: Partial<Config> = {}): Promise<{ url: string; services: Services }> {
  const services = await composeServices(
    {
      ...loadConfig({}), port: 0, dataDir, networks: ["base-sepolia"], networkOverrides: evmWorldOverrides(world), evmKeys: world.facilitatorKeys,
      bazaar: { ...loadConfig({}).bazaar, enabled: false }, tee: loadConfig({ OPERATOR_API_KEY: OPERATOR_KEY }).tee, payments: payments(), ...config,
    },
    createLogger("silent"),
    { pollingIntervalMs: 50 },
  );
  running.push(services);
  return { url: await services.listen(), services };
}
const freshDir = () => {
  const d = mkdtempSync(join(tmpdir(), "payments-e2e-"));
  dirs.push(d);
  return d;
};
const view = async (url: string, query = "") =>
  (await (await fetch(`${url}/explorer/payments/api/payments${query}`, { headers: { authorization: `Bearer ${OPERATOR_KEY}` } })).json()) as { payments: Record<string, any>[] };

const noticesFor = (transaction: string) => hook.got.filter((g) => JSON.parse(g.body).payment.transaction === transaction);

describe("a payment answered settlement_pending", () => {
  it("is recorded pending, then collected by the facilitator, and its payee notified of the outcome", async () => {
    const { url } = await facilitator(freshDir(), { receiptTimeoutMs: 800, reconcileAfterMs: 300, settleLeaseMs: 1_000 });
    const { body } = await evmPaymentBody(n(), 700n);
    await nodeRpc(n().rpcUrl, "evm_setAutomine", [false]);
    let pending: Record<string, any>;
    try {
      pending = (await (await postJson(`${url}/settle`, body)).json()) as Record<string, any>;
      expect(pending).toMatchObject({ success: false, errorReason: "settlement_pending" });
      const listed = await waitFor(async () => (await view(url, "?outcome=pending")).payments[0], "the pending record");
      expect(listed).toMatchObject({ outcome: "pending", reason: "settlement_pending", transaction: pending.transaction, amount: "700", webhooks: [] });
    } finally {
      await nodeRpc(n().rpcUrl, "evm_setAutomine", [true]);
    }
    await nodeRpc(n().rpcUrl, "evm_mine");
    // Nobody comes back for it: the collector records the outcome, and the notice goes out.
    const collected = await waitFor(async () => (await view(url)).payments.find((p) => p.transaction === pending.transaction && p.outcome === "success"), "the collected outcome");
    expect(collected).toMatchObject({ collected: true, amount: "700", payTo: n().payTo.toLowerCase() });
    expect((await view(url, "?outcome=pending")).payments).toEqual([]);
    const [notice] = await waitFor(async () => (noticesFor(pending.transaction).length ? noticesFor(pending.transaction) : undefined), "the notice");
    expect(JSON.parse(notice!.body)).toMatchObject({ type: "payment.succeeded", payment: { outcome: "success", collected: true, transaction: pending.transaction } });
    const usage = (await (await fetch(`${url}/usage?days=1`, { headers: { "x-api-key": OPERATOR_KEY } })).json()) as Record<string, any>;
    expect(usage.payees[0].days[0]).toMatchObject({ payments: 1, success: 1, pending: 0, amounts: [{ amount: "700" }] });
  });
});

describe("a notice across a restart of the facilitator", () => {
  it("is sent again by the restarted facilitator from its outbox, under the same id, and delivered once", async () => {
    const dataDir = freshDir();
    hook.answer(() => 503);
    const before = hook.got.length;
    const first = await facilitator(dataDir);
    const { body } = await evmPaymentBody(n(), 900n);
    const settled = (await (await postJson(`${first.url}/settle`, body)).json()) as { success: boolean; transaction: string };
    expect(settled.success).toBe(true);
    await waitFor(async () => noticesFor(settled.transaction).length >= 1, "a failed attempt");
    await first.services.close();

    hook.answer(() => 204);
    const second = await facilitator(dataDir);
    const delivered = await waitFor(async () => (await view(second.url)).payments.find((p) => p.transaction === settled.transaction && p.webhooks[0]?.state === "delivered"), "delivery after the restart");
    const attempts = noticesFor(settled.transaction);
    expect(attempts.filter((a) => a.status === 204)).toHaveLength(1);
    expect(new Set(attempts.map((a) => a.headers[WEBHOOK_HEADERS.id])).size).toBe(1);
    expect(delivered.webhooks[0]).toMatchObject({ attempts: attempts.length, lastStatus: 204, receiver: `${hook.url}/hooks` });
    for (const a of attempts) {
      expect(verifyNotice({ secret: SECRET, body: a.body, timestamp: String(a.headers[WEBHOOK_HEADERS.timestamp]), signature: String(a.headers[WEBHOOK_HEADERS.signature]), nowSeconds: Math.floor(Date.now() / 1000) })).toEqual({ ok: true });
    }
    expect(hook.got.length - before).toBe(attempts.length);
    await second.services.close();
  });
});

describe("usageMetadata that breaks the rules", () => {
  it("is refused with its reason before any money moves; the same payment then settles without it", async () => {
    const { url } = await facilitator(freshDir());
    const chain = chainView(n());
    const { body } = await evmPaymentBody(n(), 300n);
    const balance = await chain.balanceOf(n().payer.address);
    for (const usageMetadata of [{ inputTokens: -1 }, { model: "x".repeat(500) }, "lots"]) {
      const refused = (await (await postJson(`${url}/settle`, { ...body, usageMetadata })).json()) as Record<string, unknown>;
      expect(refused).toMatchObject({ success: false, errorReason: "invalid_usage_metadata", transaction: "" });
    }
    const header = await postJson(`${url}/settle`, body, { "x-usage-metadata": "%%%" });
    expect(await header.json()).toMatchObject({ success: false, errorReason: "invalid_usage_metadata" });
    expect(await chain.balanceOf(n().payer.address)).toBe(balance);
    expect((await view(url)).payments).toEqual([]);
    const ok = (await (await postJson(`${url}/settle`, { ...body, usageMetadata: { outputTokens: 9, unknownField: "dropped" } })).json()) as Record<string, unknown>;
    expect(ok).toMatchObject({ success: true });
    const [recorded] = await waitFor(async () => (await view(url)).payments[0] && (await view(url)).payments, "the record");
    expect(recorded!.usage).toEqual({ outputTokens: 9 });
  });
});

describe("the record shared through Redis", () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis({ appendOnly: true });
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it("shows in one process what another settled, and notifies once", async () => {
    hook.answer(() => 204);
    const a = await facilitator(freshDir(), { redisUrl: redis.url });
    const b = await facilitator(freshDir(), { redisUrl: redis.url });
    const { body } = await evmPaymentBody(n(), 1_100n);
    const settled = (await (await postJson(`${a.url}/settle`, body)).json()) as { transaction: string };
    const seen = await waitFor(async () => (await view(b.url)).payments.find((p) => p.transaction === settled.transaction && p.webhooks[0]?.state === "delivered"), "B to see A's payment delivered");
    expect(seen).toMatchObject({ outcome: "success", amount: "1100" });
    await new Promise((r) => setTimeout(r, 300));
    expect(noticesFor(settled.transaction)).toHaveLength(1);
  });
});
