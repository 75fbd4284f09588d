import http from "node:http";
import { connect } from "node:net";
import express from "express";
import { describe, expect, it } from "vitest";
import { gracefulShutdown, type ShutdownLogger } from "./shutdown.ts";
import { listen } from "../testing/http.ts";

/** An app whose POST /settle waits until the test lets it answer, like a settle waiting for its receipt. */
async function slowApp() {
  const events: string[] = [];
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let markEntered!: () => void;
  const entered = new Promise<void>((r) => (markEntered = r));
  const app = express();
  app.use(express.json());
  app.post("/settle", async (_req, res) => {
    markEntered();
    await released;
    res.once("finish", () => events.push("settle answered"));
    res.json({ success: true, transaction: "0xabc", network: "base-sepolia" });
  });
  app.post("/verify", (_req, res) => void res.json({ isValid: true }));
  const srv = await listen(app);
  return { ...srv, events, release, entered, port: Number(new URL(srv.url).port) };
}

const request = (path: string, body = "{}") =>
  `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;

/** Splits raw HTTP/1.1 responses read from one socket (all answers here carry Content-Length). */
function responses(raw: string) {
  const out: { status: number; headers: Record<string, string>; body: string }[] = [];
  let rest = raw;
  while (rest.length) {
    const end = rest.indexOf("\r\n\r\n");
    const [statusLine, ...lines] = rest.slice(0, end).split("\r\n");
    const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
    const length = Number(headers["content-length"]);
    out.push({ status: Number(statusLine!.split(" ")[1]), headers, body: rest.slice(end + 4, end + 4 + length) });
    rest = rest.slice(end + 4 + length);
  }
  return out;
}

const logger = (): ShutdownLogger & { lines: string[] } => {
  const lines: string[] = [];
  return { lines, info: (_o, m) => void lines.push(m), warn: (_o, m) => void lines.push(m), error: (_o, m) => void lines.push(m) };
};

describe("gracefulShutdown", () => {
  it("finishes the settle in flight, refuses what comes after, then drains in order", async () => {
    const app = await slowApp();
    const socket = connect(app.port, "127.0.0.1");
    let raw = "";
    socket.on("data", (d) => (raw += d));
    const socketClosed = new Promise<void>((r) => socket.once("close", () => r()));
    socket.write(request("/settle"));
    await app.entered;

    let finished = false;
    const done = gracefulShutdown({
      server: app.server,
      timeoutMs: 30_000,
      logger: logger(),
      drain: [async () => void app.events.push("worker stopped"), async () => void app.events.push("ledger closed")],
    }).then((r) => ((finished = true), r));

    // A new connection is refused outright.
    await expect(fetch(`${app.url}/verify`, { method: "POST", body: "{}" })).rejects.toThrow();
    // A new request on the kept-alive socket is answered 503 + Connection: close (after the settle, in order).
    const readByServer = new Promise((r) => app.server.once("request", r)); // fires beside the shutdown's own listener
    socket.write(request("/verify"));
    await readByServer;
    expect(finished).toBe(false);
    expect(app.events).toEqual([]);

    app.release();
    const result = await done;
    await socketClosed;
    expect(result).toEqual({ timedOut: false, drainFailures: 0 });
    expect(app.events).toEqual(["settle answered", "worker stopped", "ledger closed"]);

    const [settle, refused] = responses(raw);
    expect(settle!.status).toBe(200);
    expect(JSON.parse(settle!.body)).toEqual({ success: true, transaction: "0xabc", network: "base-sepolia" });
    expect(refused!.status).toBe(503);
    expect(refused!.headers.connection).toBe("close");
    expect(JSON.parse(refused!.body)).toEqual({ isValid: false, invalidReason: "service_unavailable", invalidMessage: expect.any(String) });
  });

  it("does not wait for kept-alive sockets to time out once their request is answered", async () => {
    const app = await slowApp();
    app.server.keepAliveTimeout = 120_000; // idle sockets would hold the server open for two minutes
    const agent = new http.Agent({ keepAlive: true });
    try {
      const answered = new Promise<number>((resolve, reject) => {
        const req = http.request({ host: "127.0.0.1", port: app.port, path: "/settle", method: "POST", agent, headers: { "content-type": "application/json" } }, (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode!));
        });
        req.on("error", reject);
        req.end("{}");
      });
      await app.entered;
      const done = gracefulShutdown({ server: app.server, timeoutMs: 10_000 });
      app.release();
      expect(await answered).toBe(200);
      expect(await done).toEqual({ timedOut: false, drainFailures: 0 });
    } finally {
      agent.destroy();
    }
  });

  it("cuts requests still in flight at the time limit, and drains anyway", async () => {
    const app = await slowApp();
    const cut = fetch(`${app.url}/settle`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }).then(
      (r) => r.status,
      () => "cut",
    );
    await app.entered;
    const log = logger();
    const result = await gracefulShutdown({ server: app.server, timeoutMs: 200, logger: log, drain: [async () => void app.events.push("drained")] });
    expect(result.timedOut).toBe(true);
    expect(await cut).toBe("cut");
    expect(app.events).toEqual(["drained"]);
    expect(log.lines).toContain("shutdown: requests still in flight at the time limit; cutting their connections");
    app.release();
  });

  it("runs every drain step even when one fails, and a second call shares the first", async () => {
    const app = await slowApp();
    const steps: string[] = [];
    const log = logger();
    const opts = {
      server: app.server,
      timeoutMs: 1000,
      logger: log,
      drain: [
        async () => void steps.push("one"),
        async () => {
          throw new Error("queue close failed");
        },
        async () => void steps.push("three"),
      ],
    };
    const first = gracefulShutdown(opts);
    const second = gracefulShutdown(opts);
    expect(second).toBe(first);
    expect(await first).toEqual({ timedOut: false, drainFailures: 1 });
    expect(steps).toEqual(["one", "three"]);
    expect(log.lines).toContain("shutdown: drain step failed; continuing with the next");
  });
});
