/** HTTP as the process and fault suites see it: every answer, its status, body and time, or none. */

export interface HttpAnswer<T = any> {
  status: number;
  body: T;
  headers: Headers;
  ms: number;
}

/**
 * POSTs JSON and reads the answer (parsed when it is JSON). Never throws: a connection error (the
 * process died under the request) or no answer within `timeoutMs` resolves with status 0 and the error.
 * For a plain `fetch` Response, `postJson` of `@facilitator/server/testing`.
 */
export async function postForAnswer<T = any>(url: string, body: unknown, opts: { headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<HttpAnswer<T>> {
  const started = Date.now();
  try {
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...opts.headers },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(opts.timeoutMs ?? 60_000),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, body: parsed as T, headers: res.headers, ms: Date.now() - started };
  } catch (e) {
    return { status: 0, body: { error: (e as Error).message } as T, headers: new Headers(), ms: Date.now() - started };
  }
}
