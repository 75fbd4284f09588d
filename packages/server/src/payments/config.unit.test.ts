import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../config.ts";
import { configSecrets } from "../ops/log-scrub.ts";

const SECRET = "whsec_0123456789abcdef";
describe("payments configuration", () => {
  it("defaults: 30 days kept, no receivers, retries from 5 s to an hour, internal receivers only for the local world", () => {
    expect(loadConfig({}).payments).toEqual({
      retentionMs: 30 * 86_400_000,
      webhooks: [],
      delivery: { baseMs: 5_000, maxMs: 3_600_000, maxAttempts: 20, timeoutMs: 10_000, allowInternal: true },
    });
    expect(loadConfig({ EVM_PRIVATE_KEY: `0x${"1".repeat(64)}` }).payments.delivery.allowInternal).toBe(false);
  });

  it("reads receivers and delivery settings", () => {
    const c = loadConfig({
      PAYMENTS_RETENTION_DAYS: "7", WEBHOOKS: JSON.stringify([{ payTo: "0x00000000000000000000000000000000000000BB", url: "https://hooks.example/x402", secret: SECRET }]),
      WEBHOOK_RETRY_BASE_MS: "100", WEBHOOK_MAX_ATTEMPTS: "3", WEBHOOK_ALLOW_INTERNAL: "false",
    }).payments;
    expect(c).toMatchObject({
      retentionMs: 7 * 86_400_000, webhooks: [{ payTo: "0x00000000000000000000000000000000000000bb", url: "https://hooks.example/x402", secret: SECRET }],
      delivery: { baseMs: 100, maxAttempts: 3, allowInternal: false },
    });
    expect(configSecrets(loadConfig({ WEBHOOKS: JSON.stringify([{ payTo: "0xb", url: "https://h.example/", secret: SECRET }]) }))).toContain(SECRET);
  });

  it.each<[string, Record<string, string>, RegExp]>([
    ["a retention of 0 days", { PAYMENTS_RETENTION_DAYS: "0" }, /^PAYMENTS_RETENTION_DAYS: must be an integer from 1 to 3650/],
    ["receivers that are not JSON", { WEBHOOKS: "[{" }, /^WEBHOOKS: must be a JSON array of \{payTo, url, secret\} \(not valid JSON\)/],
    ["a short secret", { WEBHOOKS: JSON.stringify([{ payTo: "0xb", url: "https://h.example/", secret: "short-secret" }]) }, /^WEBHOOKS: entry #1 needs a secret of 16/],
    ["a host outside the allowlist", { WEBHOOK_ALLOWED_HOSTS: "hooks.example", WEBHOOKS: JSON.stringify([{ payTo: "0xb", url: "https://evil.example/", secret: SECRET }]) }, /^WEBHOOKS: entry #1 has a url whose host is not in WEBHOOK_ALLOWED_HOSTS/],
    ["a file that cannot be read", { WEBHOOKS_FILE: "/nonexistent/webhooks.json" }, /^WEBHOOKS_FILE: points at \/nonexistent\/webhooks.json, which cannot be read/],
    ["an attempt deadline over a minute", { WEBHOOK_TIMEOUT_MS: "120000" }, /^WEBHOOK_TIMEOUT_MS: must be an integer from 100 to 60000/],
  ])("refuses %s, one line naming the variable, no secret quoted", (_, env, problem) => {
    let refused: unknown;
    try {
      loadConfig(env);
    } catch (e) {
      refused = e;
    }
    expect(refused).toBeInstanceOf(ConfigError);
    const { problems } = refused as ConfigError;
    expect(problems.some((p) => problem.test(p))).toBe(true);
    expect(problems.join("\n")).not.toContain("short-secret");
  });
});
