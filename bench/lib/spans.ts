/**
 * Timing spans inside a facilitator process, without touching its code: with `BENCH_SPANS=1` the
 * child patches global `fetch` (every JSON-RPC call viem and @solana/kit make, labelled by method),
 * the settlement ledger, the EVM transaction signer and the Facilitator entry points, and reports
 * count and mean duration per span when the orchestrator asks (one report per round).
 * Spans overlap under concurrency (they include waiting for the event loop); read them at c=1.
 */
export interface SpanStat {
  count: number;
  totalMs: number;
  meanMs: number;
}

const totals = new Map<string, { count: number; totalMs: number }>();

export function record(name: string, ms: number): void {
  const t = totals.get(name) ?? { count: 0, totalMs: 0 };
  t.count += 1;
  t.totalMs += ms;
  totals.set(name, t);
}

export async function timed<T>(name: string, work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    return await work();
  } finally {
    record(name, performance.now() - started);
  }
}

/** The spans since the last report, then starts afresh. */
export function takeSpans(): Record<string, SpanStat> {
  const out: Record<string, SpanStat> = {};
  for (const [k, v] of [...totals].sort((a, b) => b[1].totalMs - a[1].totalMs)) {
    out[k] = { count: v.count, totalMs: Math.round(v.totalMs * 10) / 10, meanMs: Math.round((v.totalMs / v.count) * 1000) / 1000 };
  }
  totals.clear();
  return out;
}

/** Wraps `obj[method]` (a prototype's async method) in a span. */
export function wrapMethod(obj: object, method: string, name: string): void {
  const target = obj as Record<string, unknown>;
  const original = target[method] as (...args: unknown[]) => unknown;
  if (typeof original !== "function") throw new Error(`cannot wrap ${name}: ${method} is not a function`);
  target[method] = function (this: unknown, ...args: unknown[]) {
    const started = performance.now();
    const result = original.apply(this, args);
    if (result instanceof Promise) return result.finally(() => record(name, performance.now() - started));
    record(name, performance.now() - started);
    return result;
  };
}

/** JSON-RPC calls over fetch, labelled `rpc <method>` (a batch: `rpc batch[n] <methods>`). */
export function wrapFetch(): void {
  const original = globalThis.fetch;
  globalThis.fetch = async (input, init) => {
    const started = performance.now();
    const label = rpcLabel(init?.body);
    try {
      return await original(input, init);
    } finally {
      record(label, performance.now() - started);
    }
  };
}

function rpcLabel(body: unknown): string {
  if (typeof body !== "string") return "fetch";
  try {
    const parsed = JSON.parse(body) as { method?: string } | { method?: string }[];
    if (Array.isArray(parsed)) return `rpc batch[${parsed.length}] ${[...new Set(parsed.map((p) => p.method))].sort().join(",")}`;
    return `rpc ${parsed.method}`;
  } catch {
    return "fetch";
  }
}

/** Answers the orchestrator's `{type: "spans"}` requests. */
export function serveSpans(): void {
  process.on("message", (m: { type?: string }) => {
    if (m?.type === "spans") process.send!({ type: "spans", spans: takeSpans() });
  });
}
