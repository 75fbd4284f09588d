/**
 * `startSolanaRpc`: a local Solana JSON-RPC node (HTTP + WebSocket subscriptions) over litesvm.
 * No npm package ships solana-test-validator, so this is the Solana chain of the devnet and tests.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import type { LiteSVM } from "litesvm";
import type { Blockhash } from "@solana/kit";
import { freePort } from "../ports.ts";
import { InvalidParamsError } from "./accounts.ts";
import { LocalSolana, RpcError, type LandedTransaction, type LocalSolanaOptions } from "./chain.ts";
import { DEVNET_GENESIS_HASH, signatureStatus, solanaMethods, type Method } from "./methods.ts";

export interface SolanaRpcOptions extends LocalSolanaOptions {
  /** HTTP port (WebSocket on the same port, and on port + 1 where `@solana/web3.js` 1.x looks). Default: a free one. */
  port?: number;
  /** Answer of `getGenesisHash`. Default: Solana devnet's, so `solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1` clients accept it. */
  genesisHash?: string;
}

export interface SolanaRpc {
  rpcUrl: string;
  wsUrl: string;
  port: number;
  /** The runtime itself, for setting up state directly. */
  svm: LiteSVM;
  chain: LocalSolana;
  latestBlockhash(): { blockhash: Blockhash; lastValidBlockHeight: bigint };
  advanceSlot(): void;
  /** Every blockhash handed out so far becomes invalid (as after ~60 s on a real cluster). */
  expireBlockhashes(): void;
  /** Sent transactions are accepted but do not land until `resumeLanding` (a slow cluster). */
  pauseLanding(): void;
  /** Lands what was held (or, with `drop`, loses it, so only a re-send can land it). */
  resumeLanding(opts?: { drop?: boolean }): void;
  stop(): Promise<void>;
}

export async function startSolanaRpc(opts: SolanaRpcOptions = {}): Promise<SolanaRpc> {
  const chain = new LocalSolana(opts);
  const methods = solanaMethods(chain, opts.genesisHash ?? DEVNET_GENESIS_HASH);
  const subscriptions = new Subscriptions(chain);
  const wss = new WebSocketServer({ noServer: true });
  wss.on("connection", (socket) => subscriptions.attach(socket));
  const upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) =>
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws, req));

  const http = createServer((req, res) => void serveHttp(methods, req, res));
  http.on("upgrade", upgrade);
  // web3.js 1.x derives the WebSocket endpoint as HTTP port + 1.
  const wsOnly = createServer((_req, res) => res.writeHead(426).end());
  wsOnly.on("upgrade", upgrade);
  const port = await listenPair(http, wsOnly, opts.port);

  return {
    rpcUrl: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
    port,
    svm: chain.svm,
    chain,
    latestBlockhash: () => chain.latestBlockhash(),
    advanceSlot: () => chain.advanceSlot(),
    expireBlockhashes: () => chain.expireBlockhashes(),
    pauseLanding: () => chain.pauseLanding(),
    resumeLanding: (o) => chain.resumeLanding(o),
    async stop() {
      chain.stop();
      for (const client of wss.clients) client.terminate();
      wss.close();
      await Promise.all([closeServer(http), closeServer(wsOnly)]);
    },
  };
}

/** Listens on a port whose successor is free too (or on `port`, with the successor if available). */
async function listenPair(http: Server, wsOnly: Server, port?: number): Promise<number> {
  if (port !== undefined) {
    await listen(http, port);
    await listen(wsOnly, port + 1).catch(() => undefined);
    return port;
  }
  for (let attempt = 0; ; attempt++) {
    const p = await freePort();
    try {
      await listen(http, p);
    } catch (e) {
      if (attempt > 20) throw e;
      continue;
    }
    try {
      await listen(wsOnly, p + 1);
      return p;
    } catch (e) {
      await closeServer(http);
      if (attempt > 20) throw e;
    }
  }
}

function listen(server: Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    server.once("error", onError);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", onError);
      resolve();
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

interface JsonRpcRequest {
  jsonrpc?: string;
  id?: unknown;
  method?: unknown;
  params?: unknown;
}

async function serveHttp(methods: Record<string, Method>, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method === "GET" && req.url === "/health") return void res.writeHead(200).end("ok");
  if (req.method !== "POST") return void res.writeHead(405).end("Used HTTP Method is not allowed. POST or OPTIONS is required");
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    return reply(res, { jsonrpc: "2.0", error: { code: -32700, message: "Parse error" }, id: null });
  }
  const answer = Array.isArray(body) ? body.map((r) => call(methods, r)) : call(methods, body);
  reply(res, answer);
}

function reply(res: ServerResponse, payload: unknown): void {
  const json = JSON.stringify(payload, (_k, v) => (typeof v === "bigint" ? Number(v) : v));
  res.writeHead(200, { "content-type": "application/json" }).end(json);
}

function call(methods: Record<string, Method>, request: unknown): unknown {
  const r = (request ?? {}) as JsonRpcRequest;
  const id = r.id ?? null;
  const method = typeof r.method === "string" && Object.hasOwn(methods, r.method) ? methods[r.method] : undefined;
  if (!method) return { jsonrpc: "2.0", error: { code: -32601, message: "Method not found" }, id };
  try {
    return { jsonrpc: "2.0", result: method(Array.isArray(r.params) ? r.params : []), id };
  } catch (e) {
    return { jsonrpc: "2.0", error: toJsonRpcError(e), id };
  }
}

function toJsonRpcError(e: unknown): { code: number; message: string; data?: unknown } {
  if (e instanceof RpcError) return { code: e.code, message: e.message, ...(e.data === undefined ? {} : { data: e.data }) };
  if (e instanceof InvalidParamsError) return { code: -32602, message: e.message };
  return { code: -32603, message: `Internal error: ${(e as Error).message}` };
}

/** `signatureSubscribe` and `slotSubscribe` over WebSocket. */
class Subscriptions {
  private nextId = 1;
  private readonly signatureWaiters = new Map<string, Map<number, WebSocket>>();
  private readonly slotWatchers = new Map<number, WebSocket>();

  constructor(private readonly chain: LocalSolana) {
    chain.on("landed", (landed: LandedTransaction) => this.onLanded(landed));
    chain.on("slot", (slot: bigint) => {
      for (const [id, socket] of this.slotWatchers) {
        notify(socket, "slotNotification", id, { parent: Number(slot) - 1, root: Number(slot), slot: Number(slot) });
      }
    });
  }

  attach(socket: WebSocket): void {
    const mine = new Set<number>();
    socket.on("message", (data) => {
      let r: JsonRpcRequest;
      try {
        r = JSON.parse(String(data));
      } catch {
        return send(socket, { jsonrpc: "2.0", error: { code: -32700, message: "Parse error" }, id: null });
      }
      if (r.id === undefined) return; // notifications (e.g. kit's keep-alive pings) need no answer
      const params = Array.isArray(r.params) ? r.params : [];
      switch (r.method) {
        case "signatureSubscribe": {
          const id = this.nextId++;
          mine.add(id);
          send(socket, { jsonrpc: "2.0", result: id, id: r.id });
          const signature = String(params[0]);
          const landed = this.chain.status(signature);
          if (landed) setImmediate(() => this.notifySignature(socket, id, landed));
          else {
            const waiters = this.signatureWaiters.get(signature) ?? new Map<number, WebSocket>();
            waiters.set(id, socket);
            this.signatureWaiters.set(signature, waiters);
          }
          return;
        }
        case "slotSubscribe": {
          const id = this.nextId++;
          mine.add(id);
          this.slotWatchers.set(id, socket);
          return send(socket, { jsonrpc: "2.0", result: id, id: r.id });
        }
        case "signatureUnsubscribe":
        case "slotUnsubscribe": {
          const id = Number(params[0]);
          const existed = this.remove(id);
          mine.delete(id);
          return send(socket, { jsonrpc: "2.0", result: existed, id: r.id });
        }
        default:
          return send(socket, { jsonrpc: "2.0", error: { code: -32601, message: "Method not found" }, id: r.id });
      }
    });
    socket.on("close", () => {
      for (const id of mine) this.remove(id);
    });
  }

  private onLanded(landed: LandedTransaction): void {
    const waiters = this.signatureWaiters.get(landed.signature);
    if (!waiters) return;
    this.signatureWaiters.delete(landed.signature);
    for (const [id, socket] of waiters) this.notifySignature(socket, id, landed);
  }

  private notifySignature(socket: WebSocket, id: number, landed: LandedTransaction): void {
    const status = signatureStatus(landed) as { slot: number; err: unknown };
    // A signature subscription ends with its one notification.
    notify(socket, "signatureNotification", id, { context: { slot: status.slot }, value: { err: status.err } });
  }

  private remove(id: number): boolean {
    let existed = this.slotWatchers.delete(id);
    for (const [signature, waiters] of this.signatureWaiters) {
      if (waiters.delete(id)) existed = true;
      if (waiters.size === 0) this.signatureWaiters.delete(signature);
    }
    return existed;
  }
}

function notify(socket: WebSocket, method: string, subscription: number, result: unknown): void {
  send(socket, { jsonrpc: "2.0", method, params: { result, subscription } });
}

function send(socket: WebSocket, message: unknown): void {
  if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(message));
}
