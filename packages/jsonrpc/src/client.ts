/**
 * JSON-RPC over keep-alive node:http(s) sockets: the calls made in the same turn of the event loop
 * travel as one batch, sent from `setImmediate` as soon as that turn ends (after its I/O callbacks,
 * so calls issued together still go together); a lone call goes as a plain request. Written for the
 * hot path: one pending-call record and one serialised string per call, one timer per HTTP request.
 * Failures are this package's own errors (errors.ts), which each caller maps to its own types
 * through `toError`, once per failure, without another promise in between.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import {
  isJsonRpcErrorResponse,
  JsonRpcBodyTooLargeError,
  JsonRpcConnectionClosedError,
  JsonRpcError,
  JsonRpcHttpStatusError,
  JsonRpcMalformedAnswerError,
  JsonRpcRequestFailedError,
  JsonRpcResponseError,
  JsonRpcTimeoutError,
} from "./errors.ts";

/** One call as sent: what `toError` is told about the call(s) a failure belongs to. */
export interface JsonRpcRequest {
  readonly id: number;
  readonly method: string;
  readonly params: unknown;
}

export interface BatchingJsonRpcOptions {
  /** Bound of one HTTP request (a batch or a lone call), from its start to the last byte of the answer, in ms. */
  timeoutMs: number;
  /** Most calls in one batch; more calls in the same turn go as several batches. */
  maxBatchSize: number;
  /** Largest answer read, in bytes. Default 10 MiB. */
  maxResponseBytes?: number;
  /**
   * What to do with calls a batch's answer does not answer. false: fail them (a refusal of the batch
   * with its JSON-RPC error, a call left out as a malformed answer). true: ask each again alone, and
   * after a refusal (or any answer that is not a list) send no more batches.
   */
  resendAlone?: boolean;
  /** Serialises one request object. Default JSON.stringify. */
  stringify?: (request: object) => string;
  /**
   * What a call rejects with for a failure: `request` is the call, or every call of the batch when
   * the whole HTTP request failed (then all of them get the one value returned). May throw; the
   * call then rejects with what it threw.
   */
  toError(failure: JsonRpcError, request: JsonRpcRequest | readonly JsonRpcRequest[]): unknown;
}

/** An HTTP answer as read, before its status or body is looked at. */
export interface HttpAnswer {
  status: number;
  statusText: string;
  headers: IncomingHttpHeaders;
  text: string;
}

interface PendingCall extends JsonRpcRequest {
  /** The serialised request object, as sent. */
  readonly json: string;
  resolve(result: unknown): void;
  reject(error: unknown): void;
}

const DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024;

export class BatchingJsonRpcClient {
  readonly timeoutMs: number;
  private readonly target: URL;
  private readonly maxBatchSize: number;
  private readonly maxResponseBytes: number;
  private readonly resendAlone: boolean;
  private readonly stringify: (request: object) => string;
  private readonly toError: BatchingJsonRpcOptions["toError"];
  private readonly agent: HttpAgent;
  private readonly send: typeof httpRequest;
  private queue: PendingCall[] = [];
  private nextId = 1;
  /** Cleared for good once the server refuses a batch (with `resendAlone`). */
  private batches = true;

  constructor(url: string | URL, opts: BatchingJsonRpcOptions) {
    this.target = new URL(url);
    if (this.target.protocol !== "http:" && this.target.protocol !== "https:") throw new Error(`JSON-RPC URL must be http(s): ${this.target.protocol}`);
    this.timeoutMs = opts.timeoutMs;
    this.maxBatchSize = opts.maxBatchSize;
    this.maxResponseBytes = opts.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    this.resendAlone = opts.resendAlone ?? false;
    this.stringify = opts.stringify ?? JSON.stringify;
    this.toError = opts.toError;
    // Idle sockets close after 4 s (or before the server's Keep-Alive hint), so a reused socket is
    // rarely one the server is closing; lifo keeps the few busiest sockets warm.
    const agentOptions = { keepAlive: true, scheduling: "lifo" as const, timeout: 4_000 };
    const https = this.target.protocol === "https:";
    this.agent = https ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions);
    this.send = https ? httpsRequest : httpRequest;
  }

  /** One JSON-RPC call; resolves with its `result`, rejects with `toError`'s value for its failure. */
  call(method: string, params?: unknown): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      let json: string;
      try {
        json = this.stringify({ jsonrpc: "2.0", id, method, params });
      } catch (e) {
        return reject(e); // this call's parameters cannot be sent; the others still go
      }
      if (this.queue.push({ id, method, params, json, resolve, reject }) === 1) setImmediate(this.flush);
    });
  }

  private readonly flush = (): void => {
    const calls = this.queue;
    this.queue = [];
    if (calls.length === 1 || !this.batches) {
      for (const call of calls) void this.sendAlone(call);
    } else if (calls.length <= this.maxBatchSize) {
      void this.sendBatch(calls);
    } else {
      for (let i = 0; i < calls.length; i += this.maxBatchSize) {
        const chunk = calls.slice(i, i + this.maxBatchSize);
        void (chunk.length === 1 ? this.sendAlone(chunk[0]!) : this.sendBatch(chunk));
      }
    }
  };

  private async sendAlone(call: PendingCall): Promise<void> {
    let answer: unknown;
    try {
      answer = parseAnswer(await this.post(call.json));
    } catch (failure) {
      return this.fail(failure, call);
    }
    this.settle(call, Array.isArray(answer) && answer.length === 1 ? answer[0] : answer);
  }

  private async sendBatch(calls: PendingCall[]): Promise<void> {
    let payload = "[";
    for (let i = 0; i < calls.length; i++) payload += i === 0 ? calls[i]!.json : `,${calls[i]!.json}`;
    let answer: unknown;
    try {
      answer = parseAnswer(await this.post(`${payload}]`));
    } catch (failure) {
      return this.fail(failure, calls);
    }
    // A server that refuses a whole batch answers one error, bare or in a one-element list (geth).
    const refusal = Array.isArray(answer) ? (answer.length === 1 && answer[0]?.id == null ? answer[0] : undefined) : answer;
    const refused = isJsonRpcErrorResponse(refusal);
    if (refused || !Array.isArray(answer)) {
      if (this.resendAlone) {
        this.batches = false;
        for (const call of calls) void this.sendAlone(call);
      } else if (refused) {
        const failure = new JsonRpcResponseError(refusal.error);
        for (const call of calls) this.fail(failure, call);
      } else {
        this.fail(new JsonRpcMalformedAnswerError(`expected ${calls.length} responses to the batch, got no list`), calls);
      }
      return;
    }
    const byId = new Map<unknown, unknown>();
    for (const a of answer) if (a && typeof a === "object") byId.set((a as { id?: unknown }).id, a);
    for (const call of calls) {
      const response = byId.get(call.id);
      if (response === undefined && this.resendAlone) void this.sendAlone(call);
      else this.settle(call, response);
    }
  }

  /** Resolves or rejects one call from its response in the answer. */
  private settle(call: PendingCall, response: unknown): void {
    if (!response || typeof response !== "object" || Array.isArray(response)) {
      return this.fail(new JsonRpcMalformedAnswerError("the answer has no response to this call"), call);
    }
    const { error, result } = response as { error?: unknown; result?: unknown };
    if (error != null) return this.fail(new JsonRpcResponseError(error as JsonRpcResponseError["error"]), call);
    call.resolve(result);
  }

  /** Rejects one call, or every call of a batch, with the one value `toError` makes of `failure`. */
  private fail(failure: unknown, request: PendingCall | readonly PendingCall[]): void {
    let error = failure;
    if (failure instanceof JsonRpcError) {
      try {
        error = this.toError(failure, request);
      } catch (e) {
        error = e;
      }
    }
    if (Array.isArray(request)) for (const call of request as readonly PendingCall[]) call.reject(error);
    else (request as PendingCall).reject(error);
  }

  /** One HTTP POST, bounded by `timeoutMs` from start to the last byte of the answer. Public so tools can time it. */
  post(payload: string): Promise<HttpAnswer> {
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (failure: JsonRpcError | undefined, answer?: HttpAnswer) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (failure) {
          req.destroy();
          reject(failure);
        } else resolve(answer!);
      };
      const req = this.send(
        this.target,
        {
          method: "POST",
          agent: this.agent,
          headers: { accept: "application/json", "content-type": "application/json", "content-length": Buffer.byteLength(payload) },
        },
        (res) => {
          const declared = Number(res.headers["content-length"]);
          if (declared > this.maxResponseBytes) return finish(new JsonRpcBodyTooLargeError(this.maxResponseBytes, declared));
          const chunks: Buffer[] = [];
          let size = 0;
          res.on("data", (chunk: Buffer) => {
            size += chunk.length;
            if (size > this.maxResponseBytes) return finish(new JsonRpcBodyTooLargeError(this.maxResponseBytes, size));
            chunks.push(chunk);
          });
          res.on("end", () =>
            finish(undefined, { status: res.statusCode ?? 0, statusText: res.statusMessage ?? "", headers: res.headers, text: Buffer.concat(chunks).toString("utf8") }),
          );
          // Cut off before its end: the server may have acted, but we cannot know its answer.
          res.on("error", (e) => finish(new JsonRpcConnectionClosedError(e)));
          res.on("close", () => finish(new JsonRpcConnectionClosedError()));
        },
      );
      const timer = setTimeout(() => finish(new JsonRpcTimeoutError(this.timeoutMs)), this.timeoutMs);
      req.on("error", (e) => finish(new JsonRpcRequestFailedError(e)));
      req.end(payload);
    });
  }
}

/** The parsed JSON of a 2xx answer; any other status, or text that is not JSON, throws its failure. */
function parseAnswer(http: HttpAnswer): unknown {
  if (http.status < 200 || http.status > 299) throw new JsonRpcHttpStatusError(http.status, http.statusText, http.headers, http.text);
  try {
    return JSON.parse(http.text);
  } catch (e) {
    throw new JsonRpcMalformedAnswerError("the answer is not JSON", e as Error);
  }
}
