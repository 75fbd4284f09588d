/**
 * The operational settings as composeServices wires them into a running server: METRICS_PORT,
 * METRICS_API_KEY and the production start-up warnings.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { composeServices, type Services } from "../compose.ts";
import { loadConfig, type Config } from "../config.ts";
import { createLogger } from "../logger.ts";

const running: { services: Services; dataDir: string }[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) {
    await r.services.close();
    rmSync(r.dataDir, { recursive: true, force: true });
  }
});

/** A facilitator with no chain (nothing here needs one), the given settings and a logger whose lines are kept. */
async function start(config: Partial<Config>) {
  const dataDir = mkdtempSync(join(tmpdir(), "compose-ops-"));
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger("info", { write: (line: string) => void lines.push(JSON.parse(line)) } as pino.DestinationStream);
  const services = await composeServices({ ...loadConfig({}), port: 0, dataDir, reconcileAfterMs: 0, ...config }, logger);
  running.push({ services, dataDir });
  const url = await services.listen();
  return { url, services, lines };
}

describe("METRICS_PORT and METRICS_API_KEY", () => {
  it("serves /metrics on its own port only, behind the key when one is set", async () => {
    const { url, services } = await start({ metricsPort: 0, metricsApiKey: "scrape-key-0c1e55" });
    const metricsUrl = services.metricsUrl();
    expect(metricsUrl).toBeDefined();
    expect(metricsUrl).not.toBe(url);
    expect((await fetch(`${url}/metrics`)).status).toBe(404);
    expect((await fetch(`${metricsUrl}/metrics`)).status).toBe(401);
    const scraped = await fetch(`${metricsUrl}/metrics`, { headers: { authorization: "Bearer scrape-key-0c1e55" } });
    expect(scraped.status).toBe(200);
    expect(await scraped.text()).toContain("x402_verify_requests_total");
    // The metrics port answers nothing else: no payment route reachable there.
    expect((await fetch(`${metricsUrl}/supported`)).status).toBe(404);
    expect((await fetch(`${url}/supported`)).status).toBe(200);
  });

  it("keeps /metrics on the API port by default, and asks for the key there when one is set", async () => {
    const open = await start({});
    expect(open.services.metricsUrl()).toBeUndefined();
    expect((await fetch(`${open.url}/metrics`)).status).toBe(200);
    const keyed = await start({ metricsApiKey: "scrape-key-0c1e55" });
    expect((await fetch(`${keyed.url}/metrics`)).status).toBe(401);
    expect((await fetch(`${keyed.url}/metrics`, { headers: { authorization: "Bearer scrape-key-0c1e55" } })).status).toBe(200);
  });
});

describe("production start-up warnings", () => {
  const warningsIn = (lines: Record<string, unknown>[]) => lines.filter((l) => l.check === "secure-defaults");

  it("are logged once each, at start-up, naming the variable and the risk", async () => {
    const { url, lines } = await start({ mode: "production" });
    const warnings = warningsIn(lines);
    expect(warnings.map((w) => w.variable)).toEqual(["API_KEYS", "RATE_LIMIT_PER_MINUTE", "METRICS_API_KEY"]);
    for (const w of warnings) expect(w.level).toBe(40); // pino's warn
    expect(String(warnings[0]!.msg)).toMatch(/anyone who can reach this server can call \/verify and \/settle/);
    // Requests do not repeat them.
    await fetch(`${url}/health`);
    await fetch(`${url}/supported`);
    expect(warningsIn(lines)).toHaveLength(3);
  });

  it("are not logged once the settings are given, nor in the local world", async () => {
    const prod = await start({ mode: "production", apiKeys: ["payments-key-1234"], rateLimitPerMinute: 600, metricsApiKey: "scrape-key-0c1e55" });
    expect(warningsIn(prod.lines)).toEqual([]);
    const local = await start({});
    expect(warningsIn(local.lines)).toEqual([]);
  });
});
