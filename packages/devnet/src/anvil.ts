import { spawn, type ChildProcess } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { freePort } from "./ports.ts";

const require = createRequire(import.meta.url);

/** The anvil binary shipped inside the `@foundry-rs/anvil-<platform>` registry package. */
export function anvilBinary(): string {
  const wrapper = require.resolve("@foundry-rs/anvil/package.json");
  const platformPkg = `@foundry-rs/anvil-${process.platform}-${process.arch === "x64" ? "amd64" : process.arch}`;
  const pkgJson = createRequire(wrapper).resolve(`${platformPkg}/package.json`);
  return join(dirname(pkgJson), "bin", "anvil");
}

export interface AnvilOptions {
  chainId: number;
  port?: number;
  /** Seconds between blocks; omitted means automine (a block per transaction). */
  blockTime?: number;
  /** Extra command-line flags. */
  args?: string[];
}

export interface AnvilNode {
  rpcUrl: string;
  port: number;
  chainId: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts anvil bound to 127.0.0.1 and resolves once it answers JSON-RPC. On a port of its own
 * choosing it tries another port if the one it picked was taken before anvil could bind it.
 */
export async function startAnvil(opts: AnvilOptions): Promise<AnvilNode> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await launchAnvil(opts, opts.port ?? (await freePort()));
    } catch (e) {
      if (opts.port !== undefined || attempt >= 3 || !/address already in use/i.test((e as Error).message)) throw e;
    }
  }
}

async function launchAnvil(opts: AnvilOptions, port: number): Promise<AnvilNode> {
  const args = ["--host", "127.0.0.1", "--port", String(port), "--chain-id", String(opts.chainId), "--silent"];
  if (opts.blockTime) args.push("--block-time", String(opts.blockTime));
  args.push(...(opts.args ?? []));
  const child = spawn(anvilBinary(), args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  const rpcUrl = `http://127.0.0.1:${port}`;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`anvil exited (${child.exitCode}): ${stderr}`);
    try {
      const res = await fetch(rpcUrl, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
      });
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`anvil did not start on port ${port}: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    rpcUrl,
    port,
    chainId: opts.chainId,
    process: child,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        await exited;
      }
    },
  };
}
