import { createServer, type Server } from "node:http";
import { freePort } from "@facilitator/devnet";

/**
 * An HTTP proxy in front of a JSON-RPC node that records each HTTP request's JSON-RPC methods, and can
 * inject transport faults: "refuse" answers 503 without forwarding; "lose-answer" forwards, then answers 503.
 */
export type RpcFault = "refuse" | "lose-answer";

export async function rpcRecorder(
  target: string,
  fault?: (methods: string[]) => RpcFault | undefined,
): Promise<{ url: string; requests: string[][]; close(): Promise<void> }> {
  const requests: string[][] = [];
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString();
    const parsed = JSON.parse(body);
    const methods = (Array.isArray(parsed) ? parsed : [parsed]).map((r: { method: string }) => r.method);
    requests.push(methods);
    const injected = fault?.(methods);
    if (injected === "refuse") return void res.writeHead(503).end("unavailable");
    const upstream = await fetch(target, { method: "POST", headers: { "content-type": "application/json" }, body });
    const text = await upstream.text();
    if (injected === "lose-answer") return void res.writeHead(503).end("unavailable");
    res.writeHead(upstream.status, { "content-type": "application/json" });
    res.end(text);
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${port}`, requests, close: () => new Promise((r) => server.close(() => r())) };
}
