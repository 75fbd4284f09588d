/**
 * Each facilitator (and the Solana node) runs in a child process of its own, so the one measured has
 * an event loop to itself, as in production, and the load client's work is not counted against it.
 */
import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { closeSync, openSync } from "node:fs";

export interface Child<T> {
  info: T;
  process: ChildProcess;
  /** Sends `{type}` and resolves with the child's next message of that type. */
  ask<R>(type: string): Promise<R>;
  stop(): Promise<void>;
}

/**
 * Forks `script` (TypeScript, through the tsx loader this process runs under) with `spec` in its
 * environment and resolves with what it reports once ready.
 */
export async function startChild<T>(
  script: string,
  spec: unknown,
  opts: { execArgv?: string[]; timeoutMs?: number; logFile?: string } = {},
): Promise<Child<T>> {
  // A child's own console output (the reference logs every failed Solana send) goes to its log file.
  const out = opts.logFile ? openSync(opts.logFile, "a") : "inherit";
  const child = fork(script, [], {
    execArgv: [...process.execArgv, ...(opts.execArgv ?? [])],
    env: { ...process.env, BENCH_SPEC: JSON.stringify(spec, (_k, v) => (typeof v === "bigint" ? v.toString() : v)) },
    stdio: ["ignore", out, out, "ipc"],
  });
  if (typeof out === "number") closeSync(out);
  const exited = once(child, "exit");
  const info = await new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} was not ready within ${opts.timeoutMs ?? 60_000} ms`)), opts.timeoutMs ?? 60_000);
    child.once("message", (m: { type: string; info?: T; error?: string }) => {
      clearTimeout(timer);
      if (m.type === "ready") resolve(m.info as T);
      else reject(new Error(`${script} failed to start: ${m.error}`));
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited (${code}) before it was ready`));
    });
  });
  return {
    info,
    process: child,
    ask<R>(type: string) {
      return new Promise<R>((resolve) => {
        const listener = (m: { type?: string }) => {
          if (m?.type !== type) return;
          child.off("message", listener);
          resolve(m as R);
        };
        child.on("message", listener);
        child.send({ type });
      });
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** For the child side: read the spec, report readiness, and clean up on SIGTERM. */
export function childSpec<T>(): T {
  const raw = process.env.BENCH_SPEC;
  if (!raw) throw new Error("BENCH_SPEC is not set: this script is started by bench/run.ts");
  return JSON.parse(raw) as T;
}

export function reportReady(info: unknown): void {
  process.send!({ type: "ready", info });
}

export function reportFailure(e: unknown): never {
  process.send?.({ type: "failed", error: e instanceof Error ? e.stack ?? e.message : String(e) });
  process.exit(1);
}

/** Runs `stop` on SIGTERM, then exits normally (so `--cpu-prof` writes its profile). */
export function onStop(stop: () => Promise<void>): void {
  process.once("SIGTERM", () => {
    stop()
      .catch(() => undefined)
      .finally(() => process.exit(0));
  });
  // The parent went away without telling us: do not linger.
  process.once("disconnect", () => process.kill(process.pid, "SIGTERM"));
}
