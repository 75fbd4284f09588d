/**
 * Graceful shutdown of the HTTP server: stop accepting connections, refuse requests that still arrive
 * on kept-alive sockets (503, `Connection: close`), let in-flight requests (settles) finish up to a
 * time limit, then run the drain steps in order (stop the worker, close the queue and the ledger).
 * A settle that was broadcast is answered and recorded before anything it needs is closed.
 */
import type { Server } from "node:http";
import { Reason } from "@facilitator/core";
import { rejectionBody } from "./rejection.ts";

export interface ShutdownLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface GracefulShutdownOptions {
  server: Server;
  /** Run one after another once no request is in flight (or the time limit passed). */
  drain?: (() => Promise<void>)[];
  /** Longest wait for in-flight requests; past it their connections are cut. */
  timeoutMs: number;
  logger?: ShutdownLogger;
}

export interface ShutdownResult {
  /** True when in-flight requests were cut off at the time limit. */
  timedOut: boolean;
  /** Drain steps that threw (each is logged; later steps still run). */
  drainFailures: number;
}

/** How often connections that finished their request are closed while waiting (Node keeps them idle otherwise). */
const IDLE_SWEEP_MS = 50;

const underway = new WeakMap<Server, Promise<ShutdownResult>>();

/** Shuts `server` down gracefully; a second call (a second signal) gets the first call's promise. */
export function gracefulShutdown(opts: GracefulShutdownOptions): Promise<ShutdownResult> {
  let p = underway.get(opts.server);
  if (!p) {
    p = shutdown(opts);
    underway.set(opts.server, p);
  }
  return p;
}

async function shutdown({ server, drain = [], timeoutMs, logger }: GracefulShutdownOptions): Promise<ShutdownResult> {
  refuseNewRequests(server);
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  logger?.info({ timeoutMs }, "shutdown: no new connections; waiting for requests in flight");

  const sweep = setInterval(() => server.closeIdleConnections(), IDLE_SWEEP_MS);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    closed.then(() => false),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), timeoutMs))),
  ]);
  clearInterval(sweep);
  clearTimeout(timer);
  if (timedOut) {
    logger?.warn({ timeoutMs }, "shutdown: requests still in flight at the time limit; cutting their connections");
    server.closeAllConnections();
    await closed;
  }

  let drainFailures = 0;
  for (const [i, step] of drain.entries()) {
    try {
      await step();
    } catch (err) {
      drainFailures += 1;
      logger?.error({ err, step: i }, "shutdown: drain step failed; continuing with the next");
    }
  }
  logger?.info({ timedOut, drainFailures }, "shutdown: done");
  return { timedOut, drainFailures };
}

/**
 * From now on every request the server reads (a kept-alive socket's next request) gets 503 with
 * `Connection: close` in its endpoint's shape; requests already being handled are not affected.
 */
function refuseNewRequests(server: Server): void {
  server.removeAllListeners("request");
  server.on("request", (req, res) => {
    const path = new URL(req.url ?? "/", "http://local").pathname;
    const body = JSON.stringify(rejectionBody(path, Reason.unavailable, "the facilitator is shutting down; send the request again (to another instance)"));
    res.writeHead(503, { "Content-Type": "application/json; charset=utf-8", Connection: "close", "Retry-After": "1", "Content-Length": Buffer.byteLength(body) });
    res.end(body);
  });
}
