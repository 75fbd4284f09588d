/**
 * The load client: POSTs pre-serialised JSON bodies over keep-alive connections with a fixed number
 * of requests in flight, and records each request's latency (send to last body byte) and answer.
 * The same client drives our facilitator and the reference.
 */
import { Agent, request } from "node:http";

export interface Answer {
  status: number;
  body: unknown;
  ms: number;
}

export interface LoadResult {
  answers: Answer[];
  /** From the first request sent to the last answer received. */
  wallMs: number;
}

/** An agent that keeps `sockets` connections open, so no request pays for a TCP handshake. */
export function keepAliveAgent(sockets: number): Agent {
  return new Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets });
}

export function postJson(agent: Agent, url: URL, body: Buffer, headers: Record<string, string> = {}): Promise<Answer> {
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: "POST", agent, headers: { ...headers, "content-type": "application/json", "content-length": body.length } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const ms = Number(process.hrtime.bigint() - started) / 1e6;
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // not JSON: kept as text for the error tally
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, ms });
        });
        res.on("error", reject);
      },
    );
    req.setTimeout(120_000, () => req.destroy(new Error("request timed out after 120 s")));
    req.on("error", reject);
    req.end(body);
  });
}

/** Sends every body once, `concurrency` at a time, in order of the array. */
export async function runLoad(url: string, bodies: readonly Buffer[], concurrency: number, agent: Agent): Promise<LoadResult> {
  const target = new URL(url);
  const answers: Answer[] = new Array(bodies.length);
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= bodies.length) return;
      const started = process.hrtime.bigint();
      answers[i] = await postJson(agent, target, bodies[i]!).catch((e: Error) => ({
        status: 0,
        body: { transportError: e.message },
        ms: Number(process.hrtime.bigint() - started) / 1e6,
      }));
    }
  };
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: Math.min(concurrency, bodies.length) }, worker));
  return { answers, wallMs: Number(process.hrtime.bigint() - started) / 1e6 };
}
