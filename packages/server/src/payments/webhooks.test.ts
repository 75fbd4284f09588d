/**
 * Outcome webhooks against a real receiver on a local port: signed notices, retries with backoff from
 * the durable outbox across a restart (LMDB and append-only Redis), one id per notice on every attempt,
 * several processes sharing one outbox, and the refusals (internal addresses, redirects, a receiver
 * that never answers).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRedis, waitFor, type RedisServer } from "@facilitator/devnet";
import { LmdbPaymentsStore, RedisPaymentsStore } from "@facilitator/ledger";
import { verifyNotice, WEBHOOK_HEADERS, type PaymentsStore, type RetrySchedule, type WebhookTarget } from "@facilitator/payments";
import { another, record } from "@facilitator/payments/testing";
import { webhookReceiver } from "../testing/webhook-receiver.ts";
import { startWebhookDispatcher } from "./webhook-dispatcher.ts";
import { webhookSender } from "./webhook-http.ts";

const SECRET = "whsec_test_0123456789abcdef";
const PAYEE = "0x00000000000000000000000000000000000000bb";
const FAST: RetrySchedule = { baseMs: 50, maxMs: 200, maxAttempts: 5 };
const quiet = { info: () => undefined, warn: () => undefined };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


const dirs: string[] = [];
let redis: RedisServer;
let prefixes = 0;
beforeAll(async () => {
  redis = await startRedis({ appendOnly: true });
});
afterAll(async () => {
  await redis?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

type Backend = { open(): PaymentsStore; restart(): Promise<void> };
const backends: [string, () => Backend][] = [
  [
    "LMDB",
    () => {
      const dir = mkdtempSync(join(tmpdir(), "webhooks-"));
      dirs.push(dir);
      return { open: () => new LmdbPaymentsStore(dir, { retentionMs: 86_400_000 }), restart: async () => undefined };
    },
  ],
  [
    "Redis",
    () => {
      const prefix = `hooks${++prefixes}:{payments}:`;
      return { open: () => new RedisPaymentsStore({ redis: redis.url, prefix, retentionMs: 86_400_000 }), restart: () => redis.restart() };
    },
  ],
];

function dispatcherOn(store: PaymentsStore, targets: WebhookTarget[], opts: { schedule?: RetrySchedule; allowInternal?: boolean; timeoutMs?: number } = {}) {
  return startWebhookDispatcher({
    store,
    webhooks: targets,
    schedule: opts.schedule ?? FAST,
    send: webhookSender({ timeoutMs: opts.timeoutMs ?? 2_000, allowInternal: opts.allowInternal ?? true }),
    leaseMs: (opts.timeoutMs ?? 2_000) + 500,
    intervalMs: 20,
    logger: quiet,
  });
}

describe.each(backends)("webhook delivery over %s", (_, backend) => {
  it("retries a receiver that fails twice with backoff, across a restart, and delivers the same signed notice", async () => {
    const hook = await webhookReceiver((n) => (n < 2 ? 503 : 204));
    const targets = [{ payTo: PAYEE, url: `${hook.url}/x402?token=t`, secret: SECRET }];
    const b = backend();
    let store = b.open();
    const written = (await record(store, another({ now: Date.now() }), targets))!;
    let dispatcher = dispatcherOn(store, targets);
    await waitFor(() => hook.got.length >= 1, "the first attempt");
    // The facilitator goes down between attempts; the outbox is all that carries the notice over.
    await dispatcher.stop();
    await store.close();
    await b.restart();
    store = b.open();
    dispatcher = dispatcherOn(store, targets);
    const [delivered] = await waitFor(async () => {
      const ds = await store.deliveries(written.deliveries!);
      return ds[0]?.state === "delivered" ? ds : undefined;
    }, "delivery");
    await dispatcher.stop();
    await store.close();
    await hook.close();

    expect(delivered).toMatchObject({ attempts: 3, lastStatus: 204, noticeId: hook.got[0]!.headers[WEBHOOK_HEADERS.id] });
    expect(hook.got).toHaveLength(3);
    // Same id and body on every attempt; each signature checks against the raw body with its own timestamp.
    const ids = new Set(hook.got.map((g) => g.headers[WEBHOOK_HEADERS.id]));
    expect(ids.size).toBe(1);
    expect(new Set(hook.got.map((g) => g.body)).size).toBe(1);
    for (const g of hook.got) {
      const check = verifyNotice({ secret: SECRET, body: g.body, timestamp: g.headers[WEBHOOK_HEADERS.timestamp] as string, signature: g.headers[WEBHOOK_HEADERS.signature] as string, nowSeconds: Math.floor(Date.now() / 1000) });
      expect(check).toEqual({ ok: true });
      expect(verifyNotice({ secret: "another-secret-of-16+", body: g.body, timestamp: g.headers[WEBHOOK_HEADERS.timestamp] as string, signature: g.headers[WEBHOOK_HEADERS.signature] as string, nowSeconds: Math.floor(Date.now() / 1000) })).toEqual({ ok: false, reason: "signature_mismatch" });
    }
    expect(JSON.parse(hook.got[0]!.body)).toMatchObject({ id: ids.values().next().value, type: "payment.succeeded", payment: { id: written.id, payTo: PAYEE, amount: "1000", outcome: "success" } });
    // backoff: the third attempt waited at least twice the base after the second
    expect(hook.got[2]!.at - hook.got[1]!.at).toBeGreaterThanOrEqual(FAST.baseMs * 2 - 10);
  });

  it("sends each notice once when two processes share the outbox", async () => {
    const hook = await webhookReceiver();
    const targets = [{ payTo: PAYEE, url: hook.url, secret: SECRET }];
    const b = backend();
    const [one, two] = [b.open(), b.open()];
    const dispatchers = [dispatcherOn(one, targets), dispatcherOn(two, targets)];
    const records = await Promise.all(Array.from({ length: 8 }, (_, i) => record(i % 2 ? one : two, another({ now: Date.now() }), targets)));
    dispatchers.forEach((d) => d.kick());
    await waitFor(() => hook.got.length >= 8, "eight notices");
    await sleep(200);
    await Promise.all(dispatchers.map((d) => d.stop()));
    const delivered = await one.deliveries(records.flatMap((r) => r!.deliveries!));
    await Promise.all([one.close(), two.close(), hook.close()]);
    expect(hook.got).toHaveLength(8);
    expect(new Set(hook.got.map((g) => g.headers[WEBHOOK_HEADERS.id])).size).toBe(8);
    expect(delivered.every((d) => d.state === "delivered" && d.attempts === 1)).toBe(true);
  });
});

describe("webhook refusals", () => {
  const lmdbStore = () => {
    const dir = mkdtempSync(join(tmpdir(), "webhooks-"));
    dirs.push(dir);
    return new LmdbPaymentsStore(dir, { retentionMs: 86_400_000 });
  };
  /** How a notice to `url` ends, with the receivers the dispatcher knows (`configured`, by default that one). */
  async function outcomeFor(url: string, opts: Parameters<typeof dispatcherOn>[2] = {}, configured?: WebhookTarget[]) {
    const store = lmdbStore();
    const targets = [{ payTo: PAYEE, url, secret: SECRET }];
    const written = (await record(store, another({ now: Date.now() }), targets))!;
    const dispatcher = dispatcherOn(store, configured ?? targets, { schedule: { baseMs: 50, maxMs: 50, maxAttempts: 2 }, ...opts });
    const [d] = await waitFor(async () => {
      const ds = await store.deliveries(written.deliveries!);
      return ds[0]?.state !== "pending" ? ds : undefined;
    }, "the delivery to end");
    await dispatcher.stop();
    await store.close();
    return d!;
  }

  it("refuses an internal receiver when internal addresses are not allowed, sending nothing", async () => {
    const hook = await webhookReceiver();
    expect(await outcomeFor(hook.url, { allowInternal: false })).toMatchObject({ state: "failed", attempts: 2, lastError: expect.stringMatching(/internal address/) });
    expect(await outcomeFor(hook.url.replace("127.0.0.1", "localhost"), { allowInternal: false })).toMatchObject({ state: "failed", lastError: expect.stringMatching(/resolves to an internal address/) });
    expect(hook.got).toEqual([]);
    await hook.close();
  });

  it("does not follow a redirect, gives up after the last attempt, and says why", async () => {
    const hook = await webhookReceiver(() => 302);
    expect(await outcomeFor(hook.url)).toMatchObject({ state: "failed", attempts: 2, lastStatus: 302, lastError: "HTTP 302 (redirects are not followed)" });
    expect(hook.got).toHaveLength(2);
    await hook.close();
  });

  it("bounds an attempt at the receiver that never answers", async () => {
    const hook = await webhookReceiver(() => "hang");
    expect(await outcomeFor(hook.url, { timeoutMs: 200 })).toMatchObject({ state: "failed", lastError: "no answer within 200 ms" });
    await hook.close();
  });

  it("gives up a notice whose receiver was removed from the configuration", async () => {
    expect(await outcomeFor("https://gone.example/", {}, [])).toMatchObject({ state: "failed", attempts: 1, lastError: "this receiver is no longer configured (WEBHOOKS)" });
  });
});
