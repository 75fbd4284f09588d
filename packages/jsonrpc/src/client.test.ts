import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BatchingJsonRpcClient, type BatchingJsonRpcOptions, type JsonRpcRequest } from "./client.ts";
import { JsonRpcError } from "./errors.ts";

interface Request {
  jsonrpc: string;
  id: number;
  method: string;
  params?: unknown;
}

/** How the test server answers one HTTP request: `body` is the parsed JSON-RPC request or batch. */
type Responder = (body: Request | Request[], res: ServerResponse) => void;

let server: Server;
let url = "";
let respond: Responder = () => {};
/** Each HTTP request's body as sent: a method name for a lone call, a list of them for a batch. */
let sent: (string | string[])[] = [];

beforeAll(async () => {
  server = createServer(async (req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString()) as Request | Request[];
    sent.push(Array.isArray(body) ? body.map((r) => r.method) : body.method);
    respond(body, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

/** A call's answer: `<method> ok`, or a JSON-RPC error for methods named `fail…`. */
const answerTo = (r: Request) =>
  r.method.startsWith("fail") ? { jsonrpc: "2.0", id: r.id, error: { code: -32000, message: `${r.method} failed` } } : { jsonrpc: "2.0", id: r.id, result: `${r.method} ok` };
const json = (res: ServerResponse, status: number, value: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(value));

/** Answers every call, a batch's in reverse order (so calls must be matched by id). */
const answerAll: Responder = (body, res) => json(res, 200, Array.isArray(body) ? body.map(answerTo).reverse() : answerTo(body));
/** Answers lone calls; a batch gets `batchAnswer(batch)` instead. */
const batchesAnswered =
  (batchAnswer: (batch: Request[]) => unknown): Responder =>
  (body, res) =>
    json(res, 200, Array.isArray(body) ? batchAnswer(body) : answerTo(body));
const refusal = { jsonrpc: "2.0", id: null, error: { code: -32005, message: "batch limit exceeded" } };

/** What a call settled with; a failure as the name of the client's error and whether it was the call's or the whole request's. */
type Outcome = { result: unknown } | { failure: string; of: "call" | "request"; [field: string]: unknown };

/** Makes each turn's calls in one turn of the event loop, the next turn's once those have settled. */
async function run(turns: string[][], options: Partial<BatchingJsonRpcOptions> = {}, target = url): Promise<Outcome[]> {
  const client = new BatchingJsonRpcClient(target, {
    timeoutMs: 5_000,
    maxBatchSize: 100,
    // The rejection says which failure it was and for what, so rows can tell a call's failure from a request's.
    toError: (failure, request) => ({ failure, request }),
    ...options,
  });
  const outcomes: Outcome[] = [];
  for (const turn of turns) {
    const settled = await Promise.allSettled(turn.map((method) => client.call(method, [method.length])));
    for (const s of settled) outcomes.push(s.status === "fulfilled" ? { result: s.value } : outcomeOf(s.reason));
  }
  return outcomes;
}

function outcomeOf(reason: { failure: JsonRpcError; request: JsonRpcRequest | JsonRpcRequest[] }): Outcome {
  const { failure, request } = reason;
  expect(failure).toBeInstanceOf(JsonRpcError);
  const { name, message, stack: _stack, cause, ...fields } = failure as JsonRpcError & Record<string, unknown>;
  return {
    failure: name,
    of: Array.isArray(request) ? "request" : "call",
    message,
    ...fields,
    ...(cause ? { cause: (cause as Error).name, code: (cause as { code?: unknown }).code } : {}),
  };
}

const ok = (method: string) => ({ result: `${method} ok` });
/** Answers that refuse a whole batch: one error without an id. */
const refusals: [string, unknown][] = [
  ["a bare error", refusal],
  ["an error in a one-element list (geth)", [refusal]],
];
const noListAnswer = { jsonrpc: "2.0" };
const refusedCall: Outcome = { failure: "JsonRpcResponseError", of: "call", error: refusal.error };
const noList: Outcome = { failure: "JsonRpcMalformedAnswerError", of: "request", message: "expected 2 responses to the batch, got no list" };

/** Answers above a 100-byte limit, and the size at which the client stops reading. */
const tooLarge: [string, Responder, number][] = [
  ["declared larger than maxResponseBytes: refused before reading it", (_body, res) => res.writeHead(200, { "content-length": 1000 }).end("x".repeat(1000)), 1000],
  [
    "that grows past maxResponseBytes without a declared length: cut off",
    (_body, res) => {
      res.writeHead(200, { "content-type": "application/json" }).write(`"${"x".repeat(80)}`);
      setTimeout(() => res.end(`${"x".repeat(80)}"`), 20);
    },
    162,
  ],
];

interface Row {
  name: string;
  respond: Responder;
  turns: string[][];
  options?: Partial<BatchingJsonRpcOptions>;
  /** The HTTP requests the server saw, in order. */
  sent: (string | string[])[];
  /** Each call's outcome, in the order made; partial, for failures. */
  outcomes: Outcome[];
}

const rows: Row[] = [
  {
    name: "calls made in the same turn go out as one batch, each answered by its own id",
    respond: answerAll,
    turns: [["a", "b", "c"]],
    sent: [["a", "b", "c"]],
    outcomes: [ok("a"), ok("b"), ok("c")],
  },
  {
    name: "a lone call goes out bare; a later turn's call in its own request",
    respond: answerAll,
    turns: [["a"], ["b"]],
    sent: ["a", "b"],
    outcomes: [ok("a"), ok("b")],
  },
  {
    name: "more calls than maxBatchSize go as several batches, a lone remainder bare",
    respond: answerAll,
    turns: [["a", "b", "c", "d", "e"]],
    options: { maxBatchSize: 2 },
    sent: [["a", "b"], ["c", "d"], "e"],
    outcomes: ["a", "b", "c", "d", "e"].map(ok),
  },
  {
    name: "a JSON-RPC error fails only its own call of the batch",
    respond: answerAll,
    turns: [["a", "fail", "c"]],
    sent: [["a", "fail", "c"]],
    outcomes: [ok("a"), { failure: "JsonRpcResponseError", of: "call", message: "fail failed", error: { code: -32000, message: "fail failed" } }, ok("c")],
  },
  {
    name: "a lone call answered in a one-element list is still answered",
    respond: (body, res) => json(res, 200, [answerTo(body as Request)]),
    turns: [["a"]],
    sent: ["a"],
    outcomes: [ok("a")],
  },
  ...refusals.map(([how, answer]): Row => ({
    name: `a batch refused with ${how}: every call gets the refusal`,
    respond: batchesAnswered(() => answer),
    turns: [["a", "b"]],
    sent: [["a", "b"]],
    outcomes: [refusedCall, refusedCall],
  })),
  {
    name: "a batch answered with no list: one failure for the whole request",
    respond: batchesAnswered(() => noListAnswer),
    turns: [["a", "b"]],
    sent: [["a", "b"]],
    outcomes: [noList, noList],
  },
  ...[...refusals, ["an answer that is no list", noListAnswer] as [string, unknown]].map(([how, answer]): Row => ({
    name: `a batch refused with ${how}, with resendAlone: each call asked alone, and no batch after`,
    respond: batchesAnswered(() => answer),
    turns: [["a", "b"], ["c", "d"]],
    options: { resendAlone: true },
    sent: [["a", "b"], "a", "b", "c", "d"],
    outcomes: ["a", "b", "c", "d"].map(ok),
  })),
  {
    name: "a call the batch's answer leaves out fails alone; the others are answered",
    respond: batchesAnswered((batch) => batch.slice(1).map(answerTo)),
    turns: [["a", "b"]],
    sent: [["a", "b"]],
    outcomes: [{ failure: "JsonRpcMalformedAnswerError", of: "call", message: "the answer has no response to this call" }, ok("b")],
  },
  {
    name: "a call the batch's answer leaves out, with resendAlone: asked again alone; batches go on",
    respond: batchesAnswered((batch) => batch.slice(1).map(answerTo)),
    turns: [["a", "b"], ["c", "d"]],
    options: { resendAlone: true },
    sent: [["a", "b"], "a", ["c", "d"], "c"],
    outcomes: ["a", "b", "c", "d"].map(ok),
  },
  {
    name: "a status outside 2xx: one failure for the request, with its status, headers and text",
    respond: (_body, res) => res.writeHead(503, { "x-reason": "maintenance" }).end("busy"),
    turns: [["a", "b"]],
    sent: [["a", "b"]],
    outcomes: [
      { failure: "JsonRpcHttpStatusError", of: "request", status: 503, statusText: "Service Unavailable", text: "busy", headers: expect.objectContaining({ "x-reason": "maintenance" }) },
      { failure: "JsonRpcHttpStatusError", of: "request", status: 503, statusText: "Service Unavailable", text: "busy", headers: expect.objectContaining({ "x-reason": "maintenance" }) },
    ],
  },
  {
    name: "2xx text that is not JSON: a malformed answer, the parse error as its cause",
    respond: (_body, res) => res.writeHead(200).end("<html>"),
    turns: [["a"]],
    sent: ["a"],
    outcomes: [{ failure: "JsonRpcMalformedAnswerError", of: "call", message: "the answer is not JSON", cause: "SyntaxError" }],
  },
  {
    name: "no answer within timeoutMs: a timeout for every call of the request",
    respond: () => {}, // never answers
    turns: [["a", "b"]],
    options: { timeoutMs: 200 },
    sent: [["a", "b"]],
    outcomes: [
      { failure: "JsonRpcTimeoutError", of: "request", timeoutMs: 200 },
      { failure: "JsonRpcTimeoutError", of: "request", timeoutMs: 200 },
    ],
  },
  ...tooLarge.map(([how, respond, size]): Row => ({
    name: `an answer ${how}`,
    respond,
    turns: [["a"]],
    options: { maxResponseBytes: 100 },
    sent: ["a"],
    outcomes: [{ failure: "JsonRpcBodyTooLargeError", of: "call", maxBytes: 100, size }],
  })),
  {
    name: "the connection closed mid-answer: a closed-connection failure for the request",
    respond: (_body, res) => {
      res.writeHead(200, { "content-type": "application/json", "content-length": 100 });
      res.write("[{");
      setTimeout(() => res.socket?.destroy(), 20);
    },
    turns: [["a", "b"]],
    sent: [["a", "b"]],
    outcomes: [
      { failure: "JsonRpcConnectionClosedError", of: "request", message: "the connection closed before the answer ended" },
      { failure: "JsonRpcConnectionClosedError", of: "request", message: "the connection closed before the answer ended" },
    ],
  },
];

describe("BatchingJsonRpcClient against a local server", () => {
  it.each(rows)("$name", async (row) => {
    respond = row.respond;
    sent = [];
    const outcomes = await run(row.turns, row.options);
    expect(outcomes).toEqual(row.outcomes.map((o) => ("failure" in o ? expect.objectContaining(o) : o)));
    expect(sent).toEqual(row.sent);
  });

  it("a failure of the whole request reaches toError once, and every call rejects with the same value", async () => {
    respond = (_body, res) => res.writeHead(502).end();
    const seen: (JsonRpcRequest | readonly JsonRpcRequest[])[] = [];
    const client = new BatchingJsonRpcClient(url, { timeoutMs: 5_000, maxBatchSize: 100, toError: (_f, request) => (seen.push(request), new Error("mapped")) });
    const [a, b] = await Promise.allSettled([client.call("a", [1]), client.call("b")]);
    expect(seen).toEqual([[expect.objectContaining({ method: "a", params: [1] }), expect.objectContaining({ method: "b", params: undefined })]]);
    expect((a as PromiseRejectedResult).reason).toBe((b as PromiseRejectedResult).reason);
  });

  it("nothing listening: the request fails with the socket's error as cause", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    expect(await run([["a"]], {}, `http://127.0.0.1:${port}`)).toEqual([
      expect.objectContaining({ failure: "JsonRpcRequestFailedError", of: "call", cause: "Error", code: "ECONNREFUSED" }),
    ]);
  });

  it("a call whose parameters cannot be serialised fails alone, with the serialiser's error; the others go", async () => {
    respond = answerAll;
    sent = [];
    const client = new BatchingJsonRpcClient(url, { timeoutMs: 5_000, maxBatchSize: 100, toError: (f) => f });
    const [bad, good] = await Promise.allSettled([client.call("bad", [1n]), client.call("good")]);
    expect((bad as PromiseRejectedResult).reason).toBeInstanceOf(TypeError);
    expect(good).toEqual({ status: "fulfilled", value: "good ok" });
    expect(sent).toEqual(["good"]);
  });

  it("toError that throws: the call rejects with what it threw", async () => {
    respond = answerAll;
    const thrown = new Error("mapping failed");
    const client = new BatchingJsonRpcClient(url, {
      timeoutMs: 5_000,
      maxBatchSize: 100,
      toError: () => {
        throw thrown;
      },
    });
    await expect(client.call("fail")).rejects.toBe(thrown);
  });

  it("refuses a URL that is not http(s)", () => {
    expect(() => new BatchingJsonRpcClient("ws://127.0.0.1:1", { timeoutMs: 1, maxBatchSize: 1, toError: (f) => f })).toThrow(/http\(s\)/);
  });
});
