/** A proxy in front of a JSON-RPC node that the fault suites cut, silence and restore. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";

export type ProxyMode =
  /** Requests go through to the node. */
  | "pass"
  /** Every connection is reset at once: the node is unreachable. */
  | "refuse"
  /** Requests are read and never answered: the node hangs. */
  | "hang";

export interface FaultProxy {
  url: string;
  mode: ProxyMode;
  setMode(mode: ProxyMode): void;
  /**
   * After a request whose JSON-RPC body calls one of `methods` has been answered, switch to `mode`
   * (e.g. cut the node right after a transaction was broadcast). One-shot.
   */
  switchAfter(methods: readonly string[], mode: ProxyMode): void;
  /** JSON-RPC methods that reached the node, in order. */
  readonly forwarded: string[];
  stop(): Promise<void>;
}

/**
 * An HTTP proxy in front of a JSON-RPC node that can be cut and restored. Restarting anvil itself
 * would lose the chain's state, so the node stays up and its reachability is what changes.
 */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  let mode: ProxyMode = "pass";
  let trigger: { methods: readonly string[]; mode: ProxyMode } | undefined;
  const forwarded: string[] = [];
  const sockets = new Set<Socket>();
  const held = new Set<ServerResponse>();

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (mode === "refuse") return void req.socket.destroy();
      if (mode === "hang") return void held.add(res);
      const body = Buffer.concat(chunks);
      const methods = rpcMethods(body);
      fetch(target, { method: "POST", headers: { "content-type": req.headers["content-type"] ?? "application/json" }, body })
        .then(async (answer) => {
          const text = Buffer.from(await answer.arrayBuffer());
          // The node answered, but the node was cut meanwhile: the caller never hears back.
          if (mode === "refuse") return void req.socket.destroy();
          if (mode === "hang") return void held.add(res);
          forwarded.push(...methods);
          res.writeHead(answer.status, { "content-type": answer.headers.get("content-type") ?? "application/json" });
          res.end(text);
          if (trigger && methods.some((m) => trigger!.methods.includes(m))) {
            mode = trigger.mode;
            trigger = undefined;
            if (mode === "refuse") for (const s of sockets) s.destroy();
          }
        })
        .catch(() => req.socket.destroy());
    });
  });
  server.on("connection", (s) => {
    if (mode === "refuse") return void s.destroy();
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port));
  });
  const release = () => {
    for (const res of held) res.socket?.destroy();
    held.clear();
  };
  return {
    url: `http://127.0.0.1:${port}`,
    get mode() {
      return mode;
    },
    setMode(next) {
      mode = next;
      if (next !== "hang") release();
      if (next === "refuse") for (const s of sockets) s.destroy();
    },
    switchAfter(methods, next) {
      trigger = { methods, mode: next };
    },
    forwarded,
    async stop() {
      release();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function rpcMethods(body: Buffer): string[] {
  try {
    const parsed = JSON.parse(body.toString()) as { method?: string } | { method?: string }[];
    return (Array.isArray(parsed) ? parsed : [parsed]).map((m) => String(m.method));
  } catch {
    return [];
  }
}

