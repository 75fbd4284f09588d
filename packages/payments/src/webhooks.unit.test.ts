import { describe, expect, it } from "vitest";
import { planWrite } from "./plan.ts";
import { observation, PAYEE, stored, T0 } from "./testing/fixtures.ts";
import { afterAttempt, deliveriesFor, MAX_DELIVERIES_PER_PAYMENT, nextAttemptAt, noticeBody, noticeId, parseWebhookTargets, signNotice, verifyNotice } from "./webhooks.ts";

const SECRET = "s".repeat(32);
const target = { payTo: PAYEE, url: "https://hooks.example/x402", secret: SECRET };

describe("parseWebhookTargets", () => {
  it("reads receivers, payees in lower case", () => {
    const raw = JSON.stringify([{ ...target, payTo: "0x00000000000000000000000000000000000000BB" }, { payTo: "SoLPayee", url: "http://10.0.0.5:8080/h", secret: SECRET }]);
    expect(parseWebhookTargets(raw)).toEqual({ targets: [target, { payTo: "SoLPayee", url: "http://10.0.0.5:8080/h", secret: SECRET }], problems: [] });
    expect(parseWebhookTargets(undefined)).toEqual({ targets: [], problems: [] });
  });
  it.each<[string, unknown, RegExp]>([
    ["not JSON", "{", /not valid JSON/],
    ["not an array", "{}", /got object/],
    ["no payTo", [{ url: target.url, secret: SECRET }], /entry #1 has no payTo/],
    ["a short secret", [{ ...target, secret: "short" }], /entry #1 needs a secret of 16/],
    ["a ftp URL", [{ ...target, url: "ftp://hooks.example/" }], /not http\(s\)/],
    ["credentials in the URL", [{ ...target, url: "https://user:pw@hooks.example/" }], /with credentials/],
    ["a repeated entry", [target, target], /entry #2 repeats/],
  ])("refuses %s, never quoting the secret or the URL", (_, raw, problem) => {
    const { problems } = parseWebhookTargets(typeof raw === "string" ? raw : JSON.stringify(raw));
    expect(problems.join("\n")).toMatch(problem);
    expect(problems.join("\n")).not.toContain(SECRET);
    expect(problems.join("\n")).not.toContain("hooks.example");
  });
  it("keeps URLs to the allowed hosts when a list is given", () => {
    expect(parseWebhookTargets(JSON.stringify([target]), ["other.example"]).problems).toEqual(["entry #1 has a url whose host is not in WEBHOOK_ALLOWED_HOSTS (other.example)"]);
    expect(parseWebhookTargets(JSON.stringify([target]), ["hooks.example"]).problems).toEqual([]);
  });
});

describe("notices", () => {
  it("are made for final outcomes only, to the payee's receivers only", () => {
    const success = stored(observation());
    expect(deliveriesFor(success, [target, { ...target, payTo: "0xelse" }], T0)).toHaveLength(1);
    expect(deliveriesFor(stored(observation({ success: false, reason: "settlement_pending" })), [target], T0)).toEqual([]);
    expect(noticeBody(stored(observation({ success: false, reason: "unexpected_settle_error" })), T0)).toBeUndefined();
    expect(JSON.parse(noticeBody(stored(observation({ success: false, reason: "insufficient_funds" })), T0)!.body)).toMatchObject({ type: "payment.failed", payment: { reason: "insufficient_funds" } });
  });
  it("carry one id per payment and outcome, the same on every attempt", () => {
    const body = JSON.parse(noticeBody(stored(observation({ usage: { model: "m" } })), T0)!.body);
    expect(body).toMatchObject({ id: noticeId(stored(observation())), type: "payment.succeeded", payment: { outcome: "success", amount: "1000", payTo: PAYEE, collected: false, usageMetadata: { model: "m" } } });
    expect(noticeId(stored(observation({ now: T0 + 5 })))).toBe(body.id);
    expect(noticeId(stored(observation({ success: false, reason: "insufficient_funds" })))).not.toBe(body.id);
  });
  it("are made once: a second write of the same outcome adds no delivery", () => {
    const first = planWrite(undefined, observation(), [target])!;
    expect(first.deliveries).toHaveLength(1);
    expect(first.record.deliveries).toEqual([first.deliveries[0]!.id]);
    const again = planWrite({ ...first.record, version: 1 }, observation({ collected: true }), [target]);
    expect(again?.deliveries ?? []).toEqual([]);
  });
  it("stop at a bound per payment", () => {
    const full = { ...stored(observation()), deliveries: Array.from({ length: MAX_DELIVERIES_PER_PAYMENT }, (_, i) => `d${i}`) };
    expect(deliveriesFor(full, [target], T0)).toEqual([]);
  });
});

describe("signatures", () => {
  const body = '{"id":"n1"}';
  const ts = 1_800_000_000;
  const signature = signNotice(SECRET, ts, body);
  it.each<[string, Partial<Parameters<typeof verifyNotice>[0]>, string]>([
    ["a genuine notice", {}, "ok"],
    ["one of several signatures (a secret being rotated)", { signature: `v1=00,${signature}` }, "ok"],
    ["a changed body", { body: '{"id":"n2"}' }, "signature_mismatch"],
    ["another secret", { secret: "t".repeat(32) }, "signature_mismatch"],
    ["a replay after the tolerance", { nowSeconds: ts + 301 }, "timestamp_out_of_tolerance"],
    ["no signature", { signature: undefined }, "signature_missing"],
    ["a timestamp that is not a number", { timestamp: "soon" }, "timestamp_invalid"],
  ])("%s -> %s", (_, over, expected) => {
    const check = verifyNotice({ secret: SECRET, body, timestamp: String(ts), signature, nowSeconds: ts, ...over });
    expect(check.ok ? "ok" : check.reason).toBe(expected);
  });
});

describe("nextAttemptAt", () => {
  const s = { baseMs: 1_000, maxMs: 8_000, maxAttempts: 6 };
  it.each([[1, 1_000], [2, 2_000], [3, 4_000], [4, 8_000], [5, 8_000], [6, undefined]])("after %i failed attempts: +%s ms", (attempts, wait) => {
    expect(nextAttemptAt(attempts, 0, s)).toBe(wait);
  });
});

describe("afterAttempt", () => {
  const s = { baseMs: 1_000, maxMs: 8_000, maxAttempts: 3 };
  const d = deliveriesFor(stored(observation()), [target], T0)[0]!;
  it.each<[string, number, Parameters<typeof afterAttempt>[1], object]>([
    ["a 2xx delivers", 0, { ok: true, status: 204 }, { state: "delivered", attempts: 1, lastStatus: 204, deliveredAt: T0 + 10 }],
    ["a failure is due again after the backoff", 0, { ok: false, status: 500, error: "HTTP 500" }, { state: "pending", attempts: 1, nextAt: T0 + 1_010, lastError: "HTTP 500" }],
    ["a refused connection, no status", 1, { ok: false, error: "connect ECONNREFUSED" }, { state: "pending", attempts: 2, nextAt: T0 + 2_010 }],
    ["the last attempt allowed gives up", 2, { ok: false, status: 502, error: "HTTP 502" }, { state: "failed", attempts: 3 }],
  ])("%s", (_, attempts, result, expected) => {
    const after = afterAttempt({ ...d, attempts, lastError: "earlier" }, result, T0 + 10, s);
    expect(after).toMatchObject({ ...expected, body: d.body, lastAttemptAt: T0 + 10 });
    if (result.ok) expect(after).not.toHaveProperty("lastError");
  });
});
