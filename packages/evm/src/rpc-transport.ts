/**
 * JSON-RPC over HTTP for viem clients: the calls made in the same turn of the event loop travel as
 * one batch, sent as soon as that turn ends.
 *
 * Written by hand because viem's `http({ batch: true })` waits for a `setTimeout` (at least 1 ms in
 * Node, whatever `batch.wait` says) before it sends, then posts through `fetch`: at low load a verify
 * spent more time in that timer than at the node. Here a batch leaves from `setImmediate` (after the
 * I/O callbacks of the current turn, so calls issued together still go together, and under load the
 * calls of every request that arrived in the turn share one batch), a lone call goes as a plain
 * request, over keep-alive node:http sockets (about half of `fetch`'s CPU per request); the client
 * itself is @facilitator/jsonrpc's, shared with the Solana package. Failures are viem's own error
 * classes, built from that client's as viem's http transport builds them, so callers read them the same way.
 */
import type { IncomingHttpHeaders } from "node:http";
import {
  BatchingJsonRpcClient,
  isJsonRpcErrorResponse,
  JsonRpcBodyTooLargeError,
  JsonRpcHttpStatusError,
  JsonRpcResponseError,
  JsonRpcTimeoutError,
  type JsonRpcError,
  type JsonRpcRequest,
} from "@facilitator/jsonrpc";
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

type RequestBody = { [key: string]: unknown };

/** The shared batching client, failing with viem's errors. */
export class JsonRpcHttpClient extends BatchingJsonRpcClient {
  /** The endpoint without credentials, as errors name it. */
  readonly url: string;

  constructor(url: string, opts: BatchingHttpOptions = {}) {
    const bare = new URL(url);
    bare.username = "";
    bare.password = "";
    const endpoint = bare.toString();
    super(url, {
      timeoutMs: opts.timeoutMs ?? 10_000,
      maxBatchSize: opts.maxBatchSize ?? 1000,
      maxResponseBytes: opts.maxResponseBytes,
      stringify,
      toError: (failure, request) => toViemError(failure, request, endpoint),
    });
    this.url = endpoint;
  }
}

/** The error viem's http transport throws for the same failure. */
function toViemError(failure: JsonRpcError, request: JsonRpcRequest | readonly JsonRpcRequest[], url: string): Error {
  const body = Array.isArray(request) ? (request as readonly JsonRpcRequest[]).map(bodyOf) : bodyOf(request as JsonRpcRequest);
  if (failure instanceof JsonRpcResponseError) return new RpcRequestError({ body, error: failure.error, url });
  if (failure instanceof JsonRpcHttpStatusError) return httpStatusError(failure, body, url);
  if (failure instanceof JsonRpcTimeoutError) return new TimeoutError({ body, url });
  if (failure instanceof JsonRpcBodyTooLargeError) return new ResponseBodyTooLargeError({ maxSize: failure.maxBytes, size: failure.size });
  // Refused or cut-off connections, malformed answers: viem names the cause when there is one.
  return new HttpRequestError({ body, cause: failure.cause as Error | undefined, details: failure.message, url });
}

/** A call's request body as viem's errors show it. */
function bodyOf(request: JsonRpcRequest): RequestBody {
  return request.params === undefined ? { method: request.method } : { method: request.method, params: request.params };
}

/** A non-2xx answer: the JSON-RPC error in its body if any (RpcRequestError), else an HttpRequestError. */
function httpStatusError(failure: JsonRpcHttpStatusError, body: RequestBody | RequestBody[], url: string): Error {
  let data: unknown;
  try {
    data = JSON.parse(failure.text || "{}");
  } catch {
    data = { error: failure.text };
  }
  const error = Array.isArray(body) && Array.isArray(data) && data.length === 1 ? data[0] : data;
  const headers = toHeaders(failure.headers);
  if (isJsonRpcErrorResponse(error)) return new RpcRequestError({ body, error: error.error, headers, status: failure.status, url });
  return new HttpRequestError({
    body,
    details: stringify((data as { error?: unknown })?.error) || failure.statusText,
    headers,
    status: failure.status,
    url,
  });
}

function toHeaders(raw: IncomingHttpHeaders): Headers {
  const headers = new Headers();
  for (const [k, v] of Object.entries(raw)) if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(", ") : v);
  return headers;
}
