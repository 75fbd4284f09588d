/** How a JSON-RPC call over HTTP failed, in this package's own terms; each chain package maps these to its callers' error types. */
import type { IncomingHttpHeaders } from "node:http";

/** The fields of a JSON-RPC error response, as the server sent them. */
export interface JsonRpcErrorObject {
  code: number;
  message: string;
  data?: unknown;
}

/** Any failure of a {@link BatchingJsonRpcClient} call. */
export abstract class JsonRpcError extends Error {}

/** The server answered the call (or refused the whole batch) with a JSON-RPC error object. */
export class JsonRpcResponseError extends JsonRpcError {
  override readonly name = "JsonRpcResponseError";
  constructor(readonly error: JsonRpcErrorObject) {
    super(typeof error?.message === "string" ? error.message : "JSON-RPC error");
  }
}

/** An HTTP status outside 2xx; the body is kept as text, for callers that read an error out of it. */
export class JsonRpcHttpStatusError extends JsonRpcError {
  override readonly name = "JsonRpcHttpStatusError";
  constructor(
    readonly status: number,
    readonly statusText: string,
    readonly headers: IncomingHttpHeaders,
    readonly text: string,
  ) {
    super(`HTTP ${status} ${statusText}`);
  }
}

/** No whole answer within the bound; the request may still have reached the server. */
export class JsonRpcTimeoutError extends JsonRpcError {
  override readonly name = "JsonRpcTimeoutError";
  constructor(readonly timeoutMs: number) {
    super(`no answer within ${timeoutMs} ms`);
  }
}

/** The request did not get through (refused, reset, unknown host): `cause` says why. */
export class JsonRpcRequestFailedError extends JsonRpcError {
  override readonly name = "JsonRpcRequestFailedError";
  declare readonly cause: Error;
  constructor(cause: Error) {
    super(cause.message, { cause });
  }
}

/** The connection closed before the answer ended: the server may have acted, but its answer is lost. */
export class JsonRpcConnectionClosedError extends JsonRpcError {
  override readonly name = "JsonRpcConnectionClosedError";
  declare readonly cause: Error | undefined;
  constructor(cause?: Error) {
    super("the connection closed before the answer ended", { cause });
  }
}

/** The answer was larger than the client reads. */
export class JsonRpcBodyTooLargeError extends JsonRpcError {
  override readonly name = "JsonRpcBodyTooLargeError";
  constructor(
    readonly maxBytes: number,
    readonly size: number,
  ) {
    super(`answer of ${size} bytes or more, above the limit of ${maxBytes}`);
  }
}

/** A 2xx answer that is not JSON, or has no response for this call. */
export class JsonRpcMalformedAnswerError extends JsonRpcError {
  override readonly name = "JsonRpcMalformedAnswerError";
  declare readonly cause: Error | undefined;
  constructor(message: string, cause?: Error) {
    super(message, { cause });
  }
}

/** True for a JSON-RPC error response: `{ error: { code: number, message: string } }`. */
export function isJsonRpcErrorResponse(data: unknown): data is { id?: unknown; error: JsonRpcErrorObject } {
  const error = (data as { error?: Partial<JsonRpcErrorObject> } | null | undefined)?.error;
  return typeof error?.code === "number" && typeof error.message === "string";
}
