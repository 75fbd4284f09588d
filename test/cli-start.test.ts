/**
 * The run command as a newcomer and an operator meet it: the embedded world comes up, describes itself,
 * takes a payment from an official client and leaves nothing behind; a wrong production configuration
 * stops before listening.
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { devnetJsonPath, devKey, freePort, repoRoot, startAnvil, deployTestUsdc, waitFor } from "@facilitator/devnet";
import { postJson } from "@facilitator/server/testing";
import { evmPaymentBody } from "./helpers/payments.ts";

const tsx = join(repoRoot, "node_modules", ".bin", "tsx");
const cli = join(repoRoot, "packages", "server", "src", "cli.ts");

function run(env: Record<string, string>): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  let out = "";
  const child = spawn(tsx, [cli], { cwd: repoRoot, env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? "/tmp", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, output: () => out, exited };
}

const descendants = (pid: number): number[] => {
  const out = execFileSync("ps", ["-eo", "pid=,ppid="]).toString();
  const children = new Map<number, number[]>();
  for (const line of out.trim().split("\n")) {
    const [p, pp] = line.trim().split(/\s+/).map(Number);
    children.set(pp!, [...(children.get(pp!) ?? []), p!]);
  }
  const all: number[] = [];
  const walk = (p: number) => (children.get(p) ?? []).forEach((c) => (all.push(c), walk(c)));
  walk(pid);
  return all;
};
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("the embedded default", () => {
  let started: ReturnType<typeof run> | undefined;
  afterAll(() => {
    if (started?.child.exitCode === null) started.child.kill("SIGKILL");
  });

  it("starts the local world, writes a complete devnet JSON, takes a payment, runs the demo, and SIGTERM leaves no process", async () => {
    const port = await freePort();
    started = run({ PORT: String(port) });
    const devnet = await waitFor(() => {
      if (started!.child.exitCode !== null) throw new Error(`exited early:\n${started!.output()}`);
      if (!existsSync(devnetJsonPath)) return undefined;
      const json = JSON.parse(readFileSync(devnetJsonPath, "utf8"));
      return json.facilitatorUrl === `http://127.0.0.1:${port}` ? json : undefined; // ours, not another world's
    }, "this start's devnet JSON", 60_000, 100);
    expect(devnet.facilitatorUrl).toBe(`http://127.0.0.1:${port}`);
    expect(devnet.settlementRelay.address).toMatch(/^0x[0-9a-fA-F]{40}$/);
    expect(devnet.walrus.aggregatorUrl).toMatch(/^http:/);
    expect(devnet.inferenceApiKey).toBeTruthy();
    expect(devnet.tee.teeId).toMatch(/^0x[0-9a-f]{64}$/);
    for (const name of ["base-sepolia", "og-evm", "megaeth", "solana-devnet"]) {
      const n = devnet.networks[name];
      expect(n, name).toBeDefined();
      expect(n.rpcUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(n.asset.address).toBeTruthy();
      expect(n.payer.address).toBeTruthy();
      expect(n.payTo).toBeTruthy();
    }
    expect(devnet.networks["base-sepolia"]).toMatchObject({ chainId: 84532, caip2: "eip155:84532" });
    expect(devnet.networks.megaeth).toMatchObject({ chainId: 4326, asset: { name: "MegaUSD", version: "1", decimals: 18, transferMethod: "permit" } });
    expect(devnet.networks["solana-devnet"].feePayer).toBeTruthy();
    expect(started.output()).toContain("payer test key");

    // An official-shaped v2 payment through the running facilitator.
    const { body } = await evmPaymentBody(devnet.networks["base-sepolia"], 777n);
    const settle = await postJson(`${devnet.facilitatorUrl}/settle`, body);
    expect(await settle.json()).toMatchObject({ success: true, network: "eip155:84532" });

    // `pnpm demo` against this world: official clients on every network, anchoring, audit.
    const demo = spawn(tsx, [join(repoRoot, "scripts", "demo.ts")], { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] });
    let demoOut = "";
    demo.stdout!.on("data", (d) => (demoOut += d));
    demo.stderr!.on("data", (d) => (demoOut += d));
    const [demoCode] = await once(demo, "exit");
    expect(demoCode, demoOut).toBe(0);
    expect(demoOut).toContain("Every step succeeded");
    expect(demoOut.match(/VERIFIED/g)?.length).toBe(3);

    const children = descendants(started.child.pid!);
    expect(children.length).toBeGreaterThan(0); // the anvil chains at least
    started.child.kill("SIGTERM");
    expect(await started.exited).toBe(0);
    await waitFor(() => children.every((p) => !alive(p)), "every process of the world to exit", 10_000, 100);
    expect(existsSync(devnetJsonPath)).toBe(false);
  });
});

/** A stack trace's frames ("    at fn (file:line)"): an operator's mistake must not print one. */
const STACK_FRAME = /^\s+at .+[:(]/m;

describe("production configuration that is wrong", () => {
  it("stops with a message naming each problem, before listening", async () => {
    const port = await freePort();
    const r = run({ PORT: String(port), EVM_PRIVATE_KEY: "0x1234", SETTLE_RECEIPT_TIMEOUT_MS: "120000" });
    const code = await r.exited;
    expect(code).not.toBe(0);
    expect(r.output()).toMatch(/EVM_PRIVATE_KEY: key #1 is not 32-byte hex/);
    expect(r.output()).toMatch(/SETTLE_RECEIPT_TIMEOUT_MS/);
    expect(r.output()).not.toContain("listening");
    expect(r.output()).not.toMatch(STACK_FRAME);
  });

  it("names an unknown network in one line with the valid names, without a stack trace or the key", async () => {
    const key = devKey(1);
    const r = run({ PORT: String(await freePort()), EVM_PRIVATE_KEY: key, NETWORKS: "base-sepolia,base-sepolla", LOG_LEVEL: "info" });
    expect(await r.exited).toBe(2);
    const lines = r.output().trim().split("\n");
    expect(lines).toContainEqual(expect.stringMatching(/^\s*- NETWORKS: unknown network "base-sepolla" \(valid: base, base-sepolia, .*solana-devnet.*\)$/));
    expect(lines.length).toBeLessThanOrEqual(2); // a heading and the one problem
    expect(r.output()).not.toMatch(STACK_FRAME);
    expect(r.output()).not.toContain(key.slice(2));
  });

  it("names a log level it does not know, a switch that is not true/false and a Redis URL without quoting it", async () => {
    const password = "s3cret-redis-password";
    const r = run({ EVM_PRIVATE_KEY: devKey(1), LOG_LEVEL: "verbose", RUN_WORKER: "no", REDIS_URL: `localhost:${password}@6379` });
    expect(await r.exited).toBe(2);
    expect(r.output()).toMatch(/^\s*- LOG_LEVEL: unknown level "verbose" \(valid: fatal, error, warn, info, debug, trace, silent\)$/m);
    expect(r.output()).toMatch(/^\s*- RUN_WORKER: must be true or false, got "no"$/m);
    expect(r.output()).toMatch(/^\s*- REDIS_URL: not a redis:\/\/, rediss:\/\/, redis\+cluster:\/\/ or rediss\+cluster:\/\/ URL \(value not shown\)$/m);
    expect(r.output()).not.toContain(password);
    expect(r.output()).not.toMatch(STACK_FRAME);
  });

  it("refuses a chain whose id differs from the network's, and a token whose domain differs", async () => {
    const anvil = await startAnvil({ chainId: 1234 });
    try {
      const token = await deployTestUsdc({ rpcUrl: anvil.rpcUrl, chainId: 1234, deployerKey: devKey(0), name: "USDC", version: "1", decimals: 6 });
      const r = run({
        PORT: String(await freePort()),
        EVM_PRIVATE_KEY: devKey(1),
        NETWORKS: "base-sepolia",
        NETWORK_OVERRIDES: JSON.stringify([{ name: "base-sepolia", rpcUrl: anvil.rpcUrl, asset: { address: token } }]),
      });
      const code = await r.exited;
      expect(code).not.toBe(0);
      expect(r.output()).toMatch(/chain id/i);
      expect(r.output()).toMatch(/version/i);
      expect(r.output()).not.toContain(devKey(1).slice(2));
      expect(r.output()).not.toContain("facilitator listening");
      expect(r.output()).not.toMatch(STACK_FRAME);
    } finally {
      await anvil.stop();
    }
  });

  it("says in one line that its port is taken, without a stack trace", async () => {
    const anvil = await startAnvil({ chainId: 84532 });
    const taken = createServer();
    const dataDir = mkdtempSync(join(tmpdir(), "cli-port-"));
    try {
      const token = await deployTestUsdc({ rpcUrl: anvil.rpcUrl, chainId: 84532, deployerKey: devKey(0), name: "USDC", version: "2", decimals: 6 });
      await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
      const port = (taken.address() as { port: number }).port;
      const r = run({
        PORT: String(port),
        HOST: "127.0.0.1",
        EVM_PRIVATE_KEY: devKey(1),
        NETWORKS: "base-sepolia",
        NETWORK_OVERRIDES: JSON.stringify([{ name: "base-sepolia", rpcUrl: anvil.rpcUrl, asset: { address: token } }]),
        DATA_DIR: dataDir,
        LOG_LEVEL: "warn",
      });
      expect(await r.exited).toBe(2);
      expect(r.output().trim()).toMatch(new RegExp(`^PORT, HOST: cannot listen on 127\\.0\\.0\\.1:${port}: another process listens on this port$`, "m"));
      expect(r.output()).not.toMatch(STACK_FRAME);
    } finally {
      taken.close();
      await anvil.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
