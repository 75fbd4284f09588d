/**
 * Hostile connections, below the JSON: bodies over the size limit (declared or streamed), garbled
 * HTTP straight onto the socket, slow clients that dribble their headers or body, and hundreds of
 * idle sockets. Whatever a socket does, the facilitator must not crash, must not answer 5xx, must
 * free what a slow client holds, and must keep serving everyone else.
 *
 * Node's defaults would cut a request only after `headersTimeout` (60 s) or `requestTimeout` (300 s),
 * checked every 30 s; the server sets 10 s, 15 s and 1 s (compose.ts), which the slow-client tests pin.
 */
import { connect, type Socket } from "node:net";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFacilitatorOnWorld, type FacilitatorFixture } from "./helpers/facilitator.ts";
import { chainView } from "./helpers/chain.ts";
import { evmPaymentBody } from "./helpers/payments.ts";

const INFERENCE_KEY = "hostile-connections-key";
/** How long a slow client may hold a connection before the server must have cut it. */
const SLOW_CLIENT_BOUND_MS = 20_000;

let fx: FacilitatorFixture;
let port: number;
const sockets = new Set<Socket>();

beforeAll(async () => {
  fx = await startFacilitatorOnWorld({ networks: ["base-sepolia"], config: { inferenceApiKeys: [INFERENCE_KEY] } });
  port = Number(new URL(fx.url).port);
});
afterAll(async () => {
  // A socket mid-request would hold the graceful shutdown up to its time limit.
  for (const s of sockets) s.destroy();
  await fx?.stop();
});

function open(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: "127.0.0.1", port }, () => resolve(s));
    s.on("error", () => undefined); // a reset by the server is an outcome here, not a test error
    s.once("error", reject);
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  });
}

/** What came back on a socket, and whether the server closed it. */
interface Exchange {
  text: string;
  closed: boolean;
}

/** Collects the answer until the server closes the socket or `quietMs` pass without data. */
function collect(s: Socket, quietMs: number): Promise<Exchange> {
  return new Promise((resolve) => {
    let text = "";
    let timer = setTimeout(done, quietMs);
    function done(closed = false) {
      clearTimeout(timer);
      s.removeAllListeners("data");
      resolve({ text, closed });
    }
    s.on("data", (d) => {
      text += d.toString("latin1");
      clearTimeout(timer);
      timer = setTimeout(done, quietMs);
    });
    s.once("close", () => done(true));
  });
}

/** Writes `bytes`, half-closes (so the server sees the end of what it gets), and collects the answer. */
async function exchange(bytes: Buffer | string): Promise<Exchange> {
  const s = await open();
  const answer = collect(s, 2_000);
  s.end(bytes);
  const got = await answer;
  s.destroy();
  return got;
}

const statusOf = (text: string) => [...text.matchAll(/^HTTP\/1\.[01] (\d{3})/gm)].map((m) => Number(m[1]));

async function healthy(): Promise<void> {
  const res = await fetch(`${fx.url}/health`, { signal: AbortSignal.timeout(5_000) });
  expect(res.status).toBe(200);
}

async function validBody(): Promise<string> {
  return JSON.stringify((await evmPaymentBody(fx.world.networks["base-sepolia"]!, 1000n)).body);
}

const request = (method: string, path: string, headers: Record<string, string | number>, body = "") =>
  `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("")}\r\n${body}`;

describe("bodies over the size limit", () => {
  it.each(["/verify", "/settle"])("%s: 64 KiB + 1 gets 413 with the endpoint's reason, streamed or declared", async (path) => {
    const over = JSON.stringify({ pad: "x".repeat(64 * 1024) });
    const declared = await fetch(fx.url + path, { method: "POST", headers: { "content-type": "application/json" }, body: over });
    expect(declared.status).toBe(413);
    const shape = path === "/verify" ? { isValid: false, invalidReason: "payload_too_large" } : { success: false, errorReason: "payload_too_large", transaction: "", network: "" };
    expect(await declared.json()).toMatchObject(shape);

    // Chunked: no Content-Length, so the limit must be enforced while reading.
    const stream = new ReadableStream({
      start(c) {
        for (let i = 0; i < 20; i++) c.enqueue(new TextEncoder().encode(i === 0 ? '{"pad":"' : "x".repeat(8192)));
        c.close();
      },
    });
    const chunked = await fetch(fx.url + path, { method: "POST", headers: { "content-type": "application/json" }, body: stream, duplex: "half" } as RequestInit);
    expect(chunked.status).toBe(413);
    expect(await chunked.json()).toMatchObject(shape);
  });

  it("a declared 64 MB body is read off and discarded, not buffered, then answered 413", async () => {
    // body-parser refuses by Content-Length at once but reads the whole body off before answering,
    // so the client can read the 413 (a slow sender of a big body is the slow-client case below).
    const size = 64 * 1024 * 1024;
    const heapBefore = process.memoryUsage().heapUsed;
    const s = await open();
    const answer = collect(s, 1_000);
    s.write(request("POST", "/settle", { "content-type": "application/json", "content-length": size }, ""));
    const chunk = Buffer.alloc(1024 * 1024, 0x20);
    let peak = 0;
    for (let sentBytes = 0; sentBytes < size; sentBytes += chunk.length) {
      if (!s.write(chunk)) await new Promise((r) => s.once("drain", r));
      peak = Math.max(peak, process.memoryUsage().heapUsed - heapBefore);
    }
    const got = await answer;
    s.destroy();
    expect(statusOf(got.text)).toEqual([413]);
    expect(got.text).toContain('"errorReason":"payload_too_large"');
    expect(peak).toBeLessThan(32 * 1024 * 1024);
    await healthy();
  });

  it("the inference door refuses more than 2 MB with 413", async () => {
    const res = await fetch(`${fx.url}/inference/settlements`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${INFERENCE_KEY}` },
      body: JSON.stringify({ records: [{ inputHash: "x".repeat(2 * 1024 * 1024) }] }),
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: "payload_too_large" });
  });
});

describe("garbled HTTP on the socket", () => {
  it("malformed framing gets a 4xx or a closed socket, never a 5xx, and the server keeps serving", async () => {
    const cases = [
      request("POST", "/verify", { "content-type": "application/json", "content-length": 5, "transfer-encoding": "chunked" }, "0\r\n\r\n"),
      request("POST", "/verify", { "content-type": "application/json", "content-length": -1 }, "{}"),
      request("POST", "/verify", { "content-type": "application/json", "content-length": "1e3" }, "{}"),
      request("POST", "/verify", { "content-type": "application/json", "content-length": "2, 3" }, "{}"),
      request("POST", "/settle", { "content-type": "application/json", "transfer-encoding": "chunked" }, "ffffffffffffffffff\r\n{}\r\n0\r\n\r\n"),
      request("POST", "/settle", { "content-type": "application/json", "transfer-encoding": "gzip, chunked" }, "2\r\n{}\r\n0\r\n\r\n"),
      request("POST", "/settle", { "x-input-hash": "a".repeat(20_000) }, ""),
      request("GET", "/health", { "x-bad\u0000name": "1" }),
      request("GET", "/health", { "x-bad": "line\rbreak" }),
      `GET /health HTTP/9.9\r\nHost: x\r\n\r\n`,
      `GET /health\r\n\r\n`,
      `\u0016\u0003\u0001\u0000\u00a5\u0001\u0000\u0000\u00a1\u0003\u0003`, // a TLS ClientHello on the plain port
      `GET ${"/a".repeat(40_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
      "\r\n".repeat(1000),
      request("POST", "/verify", { "content-type": "application/json", "content-length": 2 }, "{}") + "GARBAGE NOT HTTP\r\n\r\n",
    ];
    for (const c of cases) {
      const got = await exchange(c);
      for (const status of statusOf(got.text)) expect(status, JSON.stringify(c.slice(0, 80))).toBeLessThan(500);
      expect(got.text.length > 0 || got.closed, JSON.stringify(c.slice(0, 80))).toBe(true);
    }
    await healthy();
  });

  it("byte-level mutations of valid requests never get a 5xx", async () => {
    const body = await validBody();
    const bases = [
      request("POST", "/verify", { "content-type": "application/json", "content-length": Buffer.byteLength(body) }, body),
      request("POST", "/settle", { "content-type": "application/json", "content-length": Buffer.byteLength(body), "x-input-hash": `0x${"1".repeat(64)}`, "x-output-hash": `0x${"2".repeat(64)}` }, body),
      request("POST", "/inference/settlements", { "content-type": "application/json", "content-length": 2, authorization: `Bearer ${INFERENCE_KEY}` }, "{}"),
      request("GET", "/inference/settlements/0x" + "ab".repeat(32), {}),
    ];
    const edit = fc.oneof(
      fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), text: fc.constantFrom("\r\n", "\r\n\r\n", "\u0000", ":", " ", "\t", "%", "\r\nContent-Length: 9999", "\r\nTransfer-Encoding: chunked") }),
      fc.record({ kind: fc.constant("cut" as const), at: fc.nat() }),
    );
    const sent = fc.sample(fc.tuple(fc.nat(), fc.array(edit, { minLength: 1, maxLength: 3 })), { numRuns: 60 });
    // Sent 10 at a time: each waits for the server to answer or give up on the half-closed socket.
    for (let i = 0; i < sent.length; i += 10) {
      await Promise.all(
        sent.slice(i, i + 10).map(async ([pick, edits]) => {
          let bytes = Buffer.from(bases[pick % bases.length]!, "latin1");
          for (const e of edits) {
            const at = e.at % (bytes.length + 1);
            if (e.kind === "flip") bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from([e.byte]), bytes.subarray(at + 1)]);
            else if (e.kind === "insert") bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from(e.text, "latin1"), bytes.subarray(at)]);
            else bytes = bytes.subarray(0, Math.max(1, at));
          }
          const got = await exchange(bytes);
          for (const status of statusOf(got.text)) expect(status, bytes.toString("latin1").slice(0, 200)).toBeLessThan(500);
        }),
      );
    }
    await healthy();
  });
});

describe("many idle connections", () => {
  it("500 idle sockets and 100 with half-sent headers do not keep a normal request out", async () => {
    const idle = await Promise.all(Array.from({ length: 500 }, () => open()));
    const partial = await Promise.all(Array.from({ length: 100 }, () => open()));
    for (const s of partial) s.write("POST /settle HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: appl");
    await healthy();
    const verify = await fetch(`${fx.url}/verify`, { method: "POST", headers: { "content-type": "application/json" }, body: await validBody(), signal: AbortSignal.timeout(10_000) });
    expect(await verify.json()).toMatchObject({ isValid: true });
    for (const s of [...idle, ...partial]) s.destroy();
  });
});

describe("slow clients", () => {
  const sent = { before: 0 };
  /** Each resolves with how long the server let the slow client hold its connection (Infinity: not cut within the bound). */
  let bodyDribble: Promise<number>;
  let headerDribble: Promise<number>;

  /** Opens a request and then sends one byte a second, until the server cuts it or the bound passes. */
  async function dribble(head: string, drip: string): Promise<number> {
    const s = await open();
    const started = Date.now();
    s.write(head);
    return new Promise((resolve) => {
      let i = 0;
      const timer = setInterval(() => {
        if (Date.now() - started > SLOW_CLIENT_BOUND_MS) return finish(Infinity);
        if (!s.destroyed) s.write(drip[i++ % drip.length]!);
      }, 1_000);
      const finish = (ms: number) => {
        clearInterval(timer);
        s.destroy();
        resolve(ms);
      };
      s.once("close", () => finish(Date.now() - started));
      s.on("data", (d) => {
        if (/^HTTP\/1\.1 (408|400)/.test(d.toString("latin1"))) finish(Date.now() - started);
      });
    });
  }

  beforeAll(async () => {
    sent.before = await chainView(fx.world.networks["base-sepolia"]!).txCount(fx.world.networks["base-sepolia"]!.facilitatorAddress);
    const body = await validBody();
    // Both start now and run side by side, so the suite waits for the bound once.
    bodyDribble = dribble(request("POST", "/settle", { "content-type": "application/json", "content-length": Buffer.byteLength(body) }, ""), body);
    headerDribble = dribble("POST /settle HTTP/1.1\r\n", "X-Slow: abcdefghijklmnopqrstuvwxyz");
  });

  it("a normal request is served while slow clients hold their connections", async () => {
    await healthy();
    const verify = await fetch(`${fx.url}/verify`, { method: "POST", headers: { "content-type": "application/json" }, body: await validBody() });
    expect(await verify.json()).toMatchObject({ isValid: true });
  });

  it(`a client that sends headers and then dribbles its body is cut within ${SLOW_CLIENT_BOUND_MS / 1000} s`, async () => {
    expect(await bodyDribble).toBeLessThan(SLOW_CLIENT_BOUND_MS);
  }, SLOW_CLIENT_BOUND_MS + 10_000);

  it(`a client that dribbles its headers is cut within ${SLOW_CLIENT_BOUND_MS / 1000} s`, async () => {
    expect(await headerDribble).toBeLessThan(SLOW_CLIENT_BOUND_MS);
  }, SLOW_CLIENT_BOUND_MS + 10_000);

  it("a settle cut off mid-body sent nothing", async () => {
    await Promise.all([bodyDribble, headerDribble]);
    expect(await chainView(fx.world.networks["base-sepolia"]!).txCount(fx.world.networks["base-sepolia"]!.facilitatorAddress)).toBe(sent.before);
    await healthy();
  });
});
