import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import express from "express";
import { Redis } from "ioredis";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  devKey, DevRole, refusingUrl, startAnvil, startRedis, startSolanaRpc, startWalrusService,
  type AnvilNode, type RedisServer, type SolanaRpc, type WalrusService,
} from "@facilitator/devnet";
import {
  READINESS_CACHE_MS, readinessRouter, redisCheck, rpcCheck, runReadinessChecks, signerBalanceCheck, signerBalanceChecks, walrusCheck,
  type ReadinessCheck, type ReadinessRouterOptions,
} from "./readiness.ts";
import { listen, type Listening } from "../testing/http.ts";

let anvil: AnvilNode;
let redis: RedisServer;
let walrus: WalrusService;
let solana: SolanaRpc;
let walrusDir: string;
let silent: Server; // accepts connections and never answers
let silentUrl: string;
const servers: Listening[] = [];

beforeAll(async () => {
  walrusDir = mkdtempSync(join(tmpdir(), "walrus-ready-"));
  [anvil, redis, walrus, solana] = await Promise.all([
    startAnvil({ chainId: 84532 }),
    startRedis(),
    startWalrusService({ dir: walrusDir }),
    startSolanaRpc(),
  ]);
  silent = createServer(() => {});
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
  silentUrl = `http://127.0.0.1:${(silent.address() as { port: number }).port}`;
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  silent?.close();
  await Promise.all([anvil?.stop(), redis?.stop(), walrus?.stop(), solana?.stop()]);
  rmSync(walrusDir, { recursive: true, force: true });
});

const OPS_KEY = "ops-detail-key-5c1e";

async function readyApp(checks: ReadinessCheck[], timeoutMs = 2000, opts: ReadinessRouterOptions = {}) {
  const app = express();
  app.use(readinessRouter(checks, { timeoutMs, detailKeys: [OPS_KEY], ...opts }));
  const srv = await listen(app);
  servers.push(srv);
  return srv.url;
}

/** GET /ready as the operator (with the detail key) or as anyone. */
const ready = async (url: string, key?: string) => {
  const res = await fetch(`${url}/ready`, { headers: key ? { authorization: `Bearer ${key}` } : {} });
  return { status: res.status, text: await res.clone().text(), body: await res.json() };
};

const funded = () => privateKeyToAccount(devKey(DevRole.facilitator)).address;

describe("GET /ready", () => {
  it("answers 200 when every dependency answers", async () => {
    const url = await readyApp([
      rpcCheck("rpc base-sepolia", anvil.rpcUrl, { chainId: 84532 }),
      rpcCheck("rpc solana-devnet", solana.rpcUrl, { family: "svm" }),
      redisCheck(redis.url),
      walrusCheck(walrus.aggregatorUrl),
      signerBalanceCheck({ rpcUrl: anvil.rpcUrl, address: funded(), minWei: 10n ** 18n, name: "gas facilitator" }),
    ]);
    const { status, body } = await ready(url, OPS_KEY);
    expect(status).toBe(200);
    expect(body.status).toBe("ready");
    expect(body.checks.map((c: { name: string; ok: boolean }) => [c.name, c.ok])).toEqual([
      ["rpc base-sepolia", true], ["rpc solana-devnet", true], ["redis", true], ["walrus", true], ["gas facilitator", true],
    ]);
    expect(body.checks[0].detail).toBe("chain id 84532");
    expect(body.checks[4].detail).toMatch(new RegExp(`^${funded()}: \\d+ wei$`));
    // Anyone else: the status, nothing about what was seen.
    expect(await ready(url)).toMatchObject({ status: 200, body: { status: "ready" } });
    expect(Object.keys((await ready(url)).body)).toEqual(["status"]);
  });

  it("answers 503 naming each failing check, and passing ones stay listed", async () => {
    const url = await readyApp([
      rpcCheck("rpc wrong chain", anvil.rpcUrl, { chainId: 8453 }),
      rpcCheck("rpc down", `${refusingUrl}/v2/secret-api-key`),
      signerBalanceCheck({ rpcUrl: anvil.rpcUrl, address: "0x000000000000000000000000000000000000dEaD", minWei: 1n, name: "gas empty" }),
      redisCheck(redis.url),
    ]);
    const { status, body } = await ready(url, OPS_KEY);
    expect(status).toBe(503);
    expect(body.failing).toEqual(["rpc wrong chain", "rpc down", "gas empty"]);
    expect(body.message).toBe("not ready: rpc wrong chain, rpc down, gas empty");
    const detail = Object.fromEntries(body.checks.map((c: { name: string; detail: string }) => [c.name, c.detail]));
    expect(detail["rpc wrong chain"]).toBe("chain id 84532, expected 8453");
    expect(detail["rpc down"]).toBe("unreachable (ECONNREFUSED)");
    expect(detail["gas empty"]).toBe("0x000000000000000000000000000000000000dEaD: 0 wei, below the minimum of 1 wei");
    expect(JSON.stringify(body)).not.toContain("secret-api-key");
    expect(body.checks.find((c: { name: string }) => c.name === "redis").ok).toBe(true);

    // Anonymous, or with a key that is not the detail key: which checks fail, and nothing they saw.
    for (const key of [undefined, "not-the-key"]) {
      const anonymous = await ready(url, key);
      expect(anonymous.status).toBe(503);
      expect(anonymous.body).toEqual({
        status: "not_ready",
        error: "service_unavailable",
        message: "not ready: rpc wrong chain, rpc down, gas empty",
        failing: ["rpc wrong chain", "rpc down", "gas empty"],
      });
      for (const secret of ["dEaD", "wei", "chain id", "ECONNREFUSED", "secret-api-key", "127.0.0.1"]) expect(anonymous.text).not.toContain(secret);
    }
  });

  it("never hangs: a dependency that accepts and never answers fails at the time limit", async () => {
    const never: ReadinessCheck = { name: "never", check: () => new Promise(() => {}) };
    const url = await readyApp([rpcCheck("rpc silent", silentUrl), redisCheck(`redis://${silentUrl.slice(7)}`, "redis silent"), never], 300);
    const { status, body } = await ready(url, OPS_KEY);
    expect(status).toBe(503);
    expect(body.failing).toEqual(["rpc silent", "redis silent", "never"]);
    for (const c of body.checks) expect(c.detail).toBe("no answer within 300 ms");
  });

  it("counts any Walrus answer below 500 as up, and a 5xx as down", async () => {
    const check = walrusCheck(walrus.aggregatorUrl);
    walrus.setFault(503);
    try {
      expect(await runReadinessChecks([check])).toEqual({ ready: false, checks: [{ name: "walrus", ok: false, detail: "HTTP 503" }] });
    } finally {
      walrus.setFault(null);
    }
    expect(await runReadinessChecks([check])).toEqual({ ready: true, checks: [{ name: "walrus", ok: true, detail: "HTTP 404" }] });
  });

  it("checks Redis on a borrowed client too, and reports a stopped Redis", async () => {
    const other = await startRedis();
    const client = new Redis(other.url, { maxRetriesPerRequest: 0 });
    client.on("error", () => {});
    try {
      expect((await runReadinessChecks([redisCheck(client, "client"), redisCheck(other.url, "url")])).ready).toBe(true);
      await other.stop();
      const report = await runReadinessChecks([redisCheck(client, "client"), redisCheck(other.url, "url")], 1000);
      expect(report.ready).toBe(false);
      expect(report.checks.map((c) => c.ok)).toEqual([false, false]);
      expect(report.checks[1]!.detail).toBe("unreachable (ECONNREFUSED)");
    } finally {
      client.disconnect();
      await other.stop();
    }
  });

  it("probes arriving while a run is under way share it", async () => {
    let runs = 0;
    let arrived = 0;
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const app = express();
    app.use((_req, _res, next) => {
      if (++arrived === 5) open();
      next();
    });
    app.use(readinessRouter([{ name: "slow", check: async () => (runs++, await gate, { ok: true }) }]));
    const srv = await listen(app);
    servers.push(srv);
    const answers = await Promise.all(Array.from({ length: 5 }, () => fetch(`${srv.url}/ready`).then((r) => r.status)));
    expect(answers).toEqual([200, 200, 200, 200, 200]);
    expect(runs).toBe(1);
  });

  it("runs the checks once per cache period, however many probes come, then again", async () => {
    expect(READINESS_CACHE_MS).toBe(15_000);
    let runs = 0;
    const counted: ReadinessCheck = { name: "counted", check: async () => (runs++, { ok: true, detail: "fine" }) };
    const url = await readyApp([counted, rpcCheck("rpc base-sepolia", anvil.rpcUrl)], 2000, { cacheMs: 400 });
    for (let i = 0; i < 10; i++) await ready(url);
    await Promise.all(Array.from({ length: 40 }, () => ready(url)));
    expect(runs).toBe(1);
    await new Promise((r) => setTimeout(r, 450));
    await Promise.all(Array.from({ length: 10 }, () => ready(url)));
    expect(runs).toBe(2);
  });

  it("caches a failure for the period too, and tells the operator's log what each failing check saw", async () => {
    let down = true;
    const flaky: ReadinessCheck = { name: "flaky", check: async () => (down ? { ok: false, detail: "HTTP 503 from 10.1.2.3" } : { ok: true }) };
    const warnings: { obj: object; msg: string }[] = [];
    const url = await readyApp([flaky], 2000, { cacheMs: 300, logger: { warn: (obj, msg) => void warnings.push({ obj, msg }) } });
    expect((await ready(url)).status).toBe(503);
    down = false;
    expect((await ready(url)).status).toBe(503); // the report is still the one just made
    expect(warnings).toEqual([{ obj: { failing: [{ name: "flaky", detail: "HTTP 503 from 10.1.2.3" }] }, msg: "not ready" }]);
    await new Promise((r) => setTimeout(r, 350));
    expect((await ready(url)).status).toBe(200);
  });

  it("gives nobody the details when no detail key is configured", async () => {
    const url = await readyApp([rpcCheck("rpc base-sepolia", anvil.rpcUrl)], 2000, { detailKeys: [] });
    for (const key of [undefined, "", OPS_KEY]) expect((await ready(url, key)).body).toEqual({ status: "ready" });
  });

  it("names signer checks by network and position, never by address", async () => {
    const checks = signerBalanceChecks(
      [
        { network: "base", rpcUrl: anvil.rpcUrl, address: funded() },
        { network: "base", rpcUrl: anvil.rpcUrl, address: "0x000000000000000000000000000000000000dEaD" },
        { network: "og-evm", rpcUrl: anvil.rpcUrl, address: funded() },
      ],
      1n,
    );
    expect(checks.map((c) => c.name)).toEqual(["gas base signer 1", "gas base signer 2", "gas og-evm signer 1"]);
  });
});
