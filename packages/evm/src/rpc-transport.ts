/**
 * JSON-RPC over HTTP for viem clients: the calls made in the same turn of the event loop travel as
 * one batch, sent as soon as that turn ends.
 *
 * Written by hand because viem's `http({ batch: true })` waits for a `setTimeout` (at least 1 ms in
 * Node, whatever `batch.wait` says) before it sends, then posts through `fetch`: at low load a verify
 * spent more time in that timer than at the node. Here a batch leaves from `setImmediate` (after the
 * I/O callbacks of the current turn, so calls issued together still go together, and under load the
 * calls of every request that arrived in the turn share one batch), a lone call goes as a plain
 * request, over keep-alive node:http sockets (about half of `fetch`'s CPU per request). Failures are
 * viem's own error classes, built as its http transport builds them, so callers read them the same way.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import {
  createTransport,
  HttpRequestError,
  ResponseBodyTooLargeError,
  RpcRequestError,
  stringify,
  TimeoutError,
  type EIP1193RequestFn,
  type Transport,
} from "viem";

export interface BatchingHttpOptions {
  /** Bound of one HTTP request (a batch or a lone call), in ms. Default 10 s. */
  timeoutMs?: number;
  /** Most calls in one batch; more calls in the same turn go as several batches. Default 1000. */
  maxBatchSize?: number;
  /** viem's retries of a failed call (its transport `retryCount`). Default: the client's. */
  retryCount?: number;
  /** Largest answer read, in bytes. Default 10 MiB (as viem's http transport). */
  maxResponseBytes?: number;
}

export type BatchingHttpTransport = Transport<"http", { url: string }, EIP1193RequestFn>;

/** A viem transport over {@link JsonRpcHttpClient}: one client (and socket pool) per viem client. */
export function batchingHttp(url: string, opts: BatchingHttpOptions = {}): BatchingHttpTransport {
  return ({ retryCount }) => {
    const rpc = new JsonRpcHttpClient(url, opts);
    return createTransport(
      {
        key: "batchingHttp",
        name: "Batching HTTP JSON-RPC",
        type: "http",
        request: ((args: { method: string; params?: unknown }) => rpc.call(args.method, args.params)) as EIP1193RequestFn,
        retryCount: opts.retryCount ?? retryCount,
        timeout: rpc.timeoutMs,
      },
      { url: rpc.url },
    );
  };
}

interface PendingCall {
  id: number;
  /** The serialised request object, as sent. */
  json: string;
  body: { method: string; params?: unknown };
  resolve(result: unknown): void;
  reject(error: unknown): void;
}

interface JsonRpcAnswer {
  id?: unknown;
  result?: unknown;
  error?: { code: number; message: string; data?: unknown };
}

interface HttpAnswer {
  status: number;
  statusMessage: string;
  headers: IncomingMessage["headers"];
  text: string;
}

const DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024;

export class JsonRpcHttpClient {
  /** The endpoint without credentials, as errors name it. */
  readonly url: string;
  readonly timeoutMs: number;
  private readonly target: URL;
  private readonly maxBatchSize: number;
  private readonly maxResponseBytes: number;
  private readonly agent: HttpAgent;
  private readonly send: typeof httpRequest;
  private queue: PendingCall[] = [];
  private nextId = 1;

  constructor(url: string, opts: BatchingHttpOptions = {}) {
    this.target = new URL(url);
    if (this.target.protocol !== "http:" && this.target.protocol !== "https:") throw new Error(`JSON-RPC URL must be http(s): ${this.target.protocol}`);
    const bare = new URL(url);
    bare.username = "";
    bare.password = "";
    this.url = bare.toString();
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.maxBatchSize = opts.maxBatchSize ?? 1000;
    this.maxResponseBytes = opts.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    // Idle sockets close after 4 s (or before the server's Keep-Alive hint), so a reused socket is
    // rarely one the server is closing; lifo keeps the few busiest sockets warm.
    const agentOptions = { keepAlive: true, scheduling: "lifo" as const, timeout: 4_000 };
    const https = this.target.protocol === "https:";
    this.agent = https ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions);
    this.send = https ? httpsRequest : httpRequest;
  }

  /** One JSON-RPC call; resolves with its `result`, rejects with viem's error for its failure. */
  call(method: string, params?: unknown): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      const body = params === undefined ? { method } : { method, params };
      let json: string;
      try {
        json = stringify({ jsonrpc: "2.0", id, ...body });
      } catch (e) {
        return reject(e); // this call's parameters cannot be sent; the others still go
      }
      if (this.queue.push({ id, json, body, resolve, reject }) === 1) setImmediate(this.flush);
    });
  }

  private readonly flush = (): void => {
    const calls = this.queue;
    this.queue = [];
    for (let i = 0; i < calls.length; i += this.maxBatchSize) void this.dispatch(calls.slice(i, i + this.maxBatchSize));
  };

  private async dispatch(calls: PendingCall[]): Promise<void> {
    const lone = calls.length === 1;
    const body = lone ? calls[0]!.body : calls.map((c) => c.body);
    let answer: unknown;
    try {
      answer = this.answerOf(body, await this.post(lone ? calls[0]!.json : `[${calls.map((c) => c.json).join(",")}]`, body));
    } catch (e) {
      for (const c of calls) c.reject(e);
      return;
    }
    if (lone) return answerCall(calls[0]!, Array.isArray(answer) && answer.length === 1 ? answer[0] : answer, this.url);
    // A server that refuses a whole batch answers one error, bare or in a one-element array (geth).
    const refusal = Array.isArray(answer) ? (answer.length === 1 && answer[0]?.id == null ? answer[0] : undefined) : answer;
    if (isRpcError(refusal)) {
      for (const c of calls) answerCall(c, { error: refusal.error }, this.url);
    } else if (!Array.isArray(answer)) {
      const error = new HttpRequestError({ body, details: `expected ${calls.length} responses to the batch, got no list`, url: this.url });
      for (const c of calls) c.reject(error);
    } else {
      const byId = new Map<unknown, unknown>();
      for (const a of answer) if (a && typeof a === "object") byId.set((a as JsonRpcAnswer).id, a);
      for (const c of calls) answerCall(c, byId.get(c.id), this.url);
    }
  }

  /** The parsed answer of a 2xx response; a non-2xx one becomes the error viem's http transport throws. */
  private answerOf(body: object, http: HttpAnswer): unknown {
    const ok = http.status >= 200 && http.status < 300;
    let data: unknown;
    try {
      data = JSON.parse(http.text || "{}");
    } catch (e) {
      if (ok) throw new HttpRequestError({ body: body as Record<string, unknown>, cause: e as Error, url: this.url });
      data = { error: http.text };
    }
    if (ok) return data;
    const error = Array.isArray(body) && Array.isArray(data) && data.length === 1 ? data[0] : data;
    const headers = toHeaders(http.headers);
    if (isRpcError(error)) {
      throw new RpcRequestError({ body: body as Record<string, unknown>, error: error.error, headers, status: http.status, url: this.url });
    }
    throw new HttpRequestError({
      body: body as Record<string, unknown>,
      details: stringify((data as { error?: unknown })?.error) || http.statusMessage,
      headers,
      status: http.status,
      url: this.url,
    });
  }

  /** One HTTP POST, bounded by `timeoutMs` from start to the last byte of the answer. Public so tools can time it. */
  post(payload: string, body: object): Promise<HttpAnswer> {
    return new Promise((resolve, reject) => {
      const errorBody = body as Record<string, unknown>;
      let done = false;
      const finish = (error: unknown, answer?: HttpAnswer) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (error) {
          req.destroy();
          reject(error);
        } else resolve(answer!);
      };
      const req = this.send(
        this.target,
        { method: "POST", agent: this.agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(payload) } },
        (res) => {
          const declared = Number(res.headers["content-length"]);
          if (declared > this.maxResponseBytes) return finish(new ResponseBodyTooLargeError({ maxSize: this.maxResponseBytes, size: declared }));
          const chunks: Buffer[] = [];
          let size = 0;
          res.on("data", (chunk: Buffer) => {
            size += chunk.length;
            if (size > this.maxResponseBytes) return finish(new ResponseBodyTooLargeError({ maxSize: this.maxResponseBytes, size }));
            chunks.push(chunk);
          });
          res.on("end", () =>
            finish(undefined, { status: res.statusCode ?? 0, statusMessage: res.statusMessage ?? "", headers: res.headers, text: Buffer.concat(chunks).toString("utf8") }),
          );
          res.on("error", (e) => finish(new HttpRequestError({ body: errorBody, cause: e, url: this.url })));
          // Closed before its end: the node may have acted, but we cannot know its answer.
          res.on("close", () => finish(new HttpRequestError({ body: errorBody, details: "the connection closed before the answer ended", url: this.url })));
        },
      );
      const timer = setTimeout(() => finish(new TimeoutError({ body: errorBody, url: this.url })), this.timeoutMs);
      req.on("error", (e) => finish(new HttpRequestError({ body: errorBody, cause: e, url: this.url })));
      req.end(payload);
    });
  }
}

/** Resolves or rejects one call from its entry in the answer, as viem's http transport does. */
function answerCall(call: PendingCall, answer: unknown, url: string): void {
  if (!answer || typeof answer !== "object" || Array.isArray(answer)) {
    return call.reject(new HttpRequestError({ body: call.body, details: "the node's answer has no response to this call", url }));
  }
  const { error, result } = answer as JsonRpcAnswer;
  if (error) return call.reject(new RpcRequestError({ body: call.body, error, url }));
  call.resolve(result);
}

function isRpcError(data: unknown): data is { id?: unknown; error: { code: number; message: string; data?: unknown } } {
  const error = (data as JsonRpcAnswer | undefined)?.error;
  return typeof error?.code === "number" && typeof error.message === "string";
}

function toHeaders(raw: IncomingMessage["headers"]): Headers {
  const headers = new Headers();
  for (const [k, v] of Object.entries(raw)) if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(", ") : v);
  return headers;
}
