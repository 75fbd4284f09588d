import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { NetworkRegistry, type LedgerEntry, type PaymentRequest, type SettleResponse } from "@facilitator/core";
import { LmdbPaymentsStore } from "@facilitator/ledger";
import { lastDays, type PaymentsStore } from "@facilitator/payments";
import { Registry } from "prom-client";
import { PaymentsRecorder } from "./recorder.ts";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const T0 = Date.UTC(2026, 11, 7, 12);
const network = new NetworkRegistry().get("base-sepolia");
const PAY_TO = "0x00000000000000000000000000000000000000Bb";
const request: PaymentRequest = {
  x402Version: 2, scheme: "exact", network, networkId: network.caip2, payload: { signature: "0x01", authorization: { nonce: "0x02" } },
  requirements: { scheme: "exact", amount: 1000n, asset: "0x00000000000000000000000000000000000000cc", payTo: PAY_TO, maxTimeoutSeconds: 60, extra: {} },
};
const target = { payTo: PAY_TO.toLowerCase(), url: "https://hooks.example/x402", secret: "s".repeat(32) };

function recorderOn(store: PaymentsStore, clock = { t: T0 }) {
  const warnings: object[] = [];
  const registry = new Registry();
  let kicked = 0;
  const recorder = new PaymentsRecorder({ store, webhooks: [target], logger: { warn: (o) => void warnings.push(o) }, registry, onDeliveries: () => kicked++, now: () => clock.t });
  return { recorder, warnings, registry, kicked: () => kicked };
}
const lmdb = () => {
  const dir = mkdtempSync(join(tmpdir(), "recorder-"));
  dirs.push(dir);
  return new LmdbPaymentsStore(dir, { retentionMs: 30 * 86_400_000, now: () => T0 });
};

describe("PaymentsRecorder", () => {
  it("records a settle answer with its usage and inference record, and kicks the webhook dispatcher", async () => {
    const store = lmdb();
    const { recorder, kicked } = recorderOn(store);
    const body: SettleResponse = { success: true, payer: "0xPayer", transaction: "0xtx", network: network.caip2, amount: "1000", extensions: { inferenceSettlement: { id: "0xrec", status: "queued" } } };
    recorder.settled({ request, body, latencyMs: 42.4, usage: { model: "m", inputTokens: 1 } });
    await recorder.drain();
    const [r] = await store.recent({ limit: 5 });
    expect(r).toMatchObject({ outcome: "success", payTo: target.payTo, amount: "1000", latencyMs: 42, usage: { model: "m", inputTokens: 1 }, inferenceRecordId: "0xrec", deliveries: [expect.any(String)] });
    expect(kicked()).toBe(1);
    await store.close();
  });

  it("moves a pending payment to the outcome the collector collected, latency from the first answer", async () => {
    const store = lmdb();
    const clock = { t: T0 };
    const { recorder } = recorderOn(store, clock);
    recorder.settled({ request, body: { success: false, errorReason: "settlement_pending", transaction: "0xtx", network: network.caip2 }, latencyMs: 30_000 });
    await recorder.drain();
    clock.t = T0 + 150_000;
    const { network: _n, requirements, ...rest } = request;
    const entry = { key: "k", state: "broadcast", version: 3, network: network.caip2, updatedAt: T0, transaction: "0xtx", request: { ...rest, requirements: { ...requirements, amount: "1000" } } } as LedgerEntry;
    recorder.collected(entry, { success: true, payer: "0xPayer", transaction: "0xtx", amount: 1000n });
    await recorder.drain();
    const [r] = await store.recent({ limit: 5 });
    expect(r).toMatchObject({ outcome: "success", collected: true, latencyMs: 150_000, time: T0, answers: 2 });
    expect((await store.totals(lastDays(T0, 1)))[0]!.counters).toMatchObject({ payments: 1, success: 1, pending: 0, amount: 1000n });
    await store.close();
  });

  it("never throws into the answer when the store fails: logs and counts instead", async () => {
    const broken = { write: () => Promise.reject(new Error("store down")) } as unknown as PaymentsStore;
    const { recorder, warnings, registry } = recorderOn(broken);
    expect(() => recorder.settled({ request, body: { success: true, payer: "0xp", transaction: "0xtx", network: network.caip2, amount: "1" }, latencyMs: 1 })).not.toThrow();
    await recorder.drain();
    expect(warnings).toHaveLength(1);
    expect(await registry.metrics()).toMatch(/x402_payment_record_failures_total\{source="settle"\} 1/);
  });

  it("records nothing for a duplicate answer", async () => {
    const writes: unknown[] = [];
    const { recorder } = recorderOn({ write: async (...a: unknown[]) => void writes.push(a) } as unknown as PaymentsStore);
    recorder.settled({ request, body: { success: false, errorReason: "duplicate_settlement", transaction: "0xtx", network: network.caip2 }, latencyMs: 1 });
    await recorder.drain();
    expect(writes).toEqual([]);
  });
});
