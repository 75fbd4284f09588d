import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports.ts";

export interface RedisOptions {
  /** Append-only file with `appendfsync always`: every acknowledged write survives a kill. */
  appendOnly?: boolean;
  /** Data directory for the append-only file; a temporary one (removed by `stop`) when omitted. */
  dir?: string;
  port?: number;
  /** More redis-server arguments (a cluster node's, see redis-cluster.ts). */
  args?: string[];
}

export interface RedisServer {
  url: string;
  port: number;
  /** Shuts the server down (SIGTERM) and removes a temporary data directory. */
  stop(): Promise<void>;
  /** SIGKILL: a crash, with no chance to flush anything. `restart()` brings it back. */
  kill(): void;
  /** Stops (if still running) and starts again on the same port and data directory. */
  restart(): Promise<void>;
}

/**
 * Starts a private `redis-server` (from PATH) on 127.0.0.1 and resolves once it answers PING. On a
 * port of its own choosing it tries another port if the server exits at start (the port was taken).
 */
export async function startRedis(opts: RedisOptions = {}): Promise<RedisServer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startRedisOn(opts.port ?? (await freePort()), opts);
    } catch (e) {
      if (opts.port !== undefined || attempt >= 3 || !/redis-server exited/.test((e as Error).message)) throw e;
    }
  }
}

async function startRedisOn(port: number, opts: RedisOptions): Promise<RedisServer> {
  const ownDir = opts.appendOnly && !opts.dir ? mkdtempSync(join(tmpdir(), "redis-")) : undefined;
  const dir = opts.dir ?? ownDir;
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--daemonize", "no", "--logfile", ""];
  if (opts.appendOnly) args.push("--appendonly", "yes", "--appendfsync", "always");
  else args.push("--appendonly", "no");
  if (dir) args.push("--dir", dir);
  args.push(...(opts.args ?? []));

  let child: ChildProcess;
  let exited: Promise<void>;
  const launch = async () => {
    let stderr = "";
    child = spawn("redis-server", args, { stdio: ["ignore", "ignore", "pipe"] });
    child.stderr!.on("data", (d) => (stderr += d));
    exited = new Promise((resolve) => child.once("exit", () => resolve()));
    const deadline = Date.now() + 10_000;
    while (!(await answersPing(port))) {
      if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode}): ${stderr}`);
      if (Date.now() > deadline) {
        child.kill("SIGKILL");
        throw new Error(`redis-server did not answer on port ${port}: ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  const running = () => child.exitCode === null && child.signalCode === null;
  const halt = async () => {
    if (running()) child.kill("SIGTERM");
    await exited;
  };
  await launch().catch((e: unknown) => {
    if (ownDir) rmSync(ownDir, { recursive: true, force: true });
    throw e;
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async stop() {
      await halt();
      if (ownDir) rmSync(ownDir, { recursive: true, force: true });
    },
    kill() {
      if (running()) child.kill("SIGKILL");
    },
    async restart() {
      await halt();
      await launch();
    },
  };
}

/** True once the server answers `+PONG` (not `-LOADING` while it replays its append-only file). */
function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    let reply = "";
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on("error", () => done(false));
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (d) => {
      reply += d;
      if (reply.includes("\r\n")) done(reply.startsWith("+PONG"));
    });
  });
}
