/**
 * A TCP proxy in front of a real redis-server that cuts the connection at a chosen moment, for tests
 * of what a client sees when the network fails around one command. It stands in for the network
 * only: every command still runs in the real Redis. Killing Redis itself cannot choose the moment
 * (before the command arrives, or after it ran but before the reply is back).
 */
import { createServer, connect, type Socket } from "node:net";
import { once } from "node:events";

export interface RedisCut {
  /** Point the client here instead of at Redis. */
  port: number;
  /** The next request that contains `text` is dropped with its connection: Redis never sees it. Resolves once cut. */
  cutRequestWith(text: string): Promise<void>;
  /** The next request that contains `text` reaches Redis and runs; its reply is dropped with the connection. Resolves once cut. */
  cutReplyToRequestWith(text: string): Promise<void>;
  /** After a cut, the network stays down (a new connection is dropped as soon as it opens) until this is called. */
  restore(): void;
  close(): Promise<void>;
}

export async function startRedisCut(redisPort: number): Promise<RedisCut> {
  let armed: { at: "request" | "reply"; text: string; done: () => void } | undefined;
  let down = false;
  const sockets = new Set<Socket>();
  const cut = (a: Socket, b: Socket) => {
    down = true;
    a.destroy();
    b.destroy();
    armed?.done();
    armed = undefined;
  };
  const arm = (at: "request" | "reply", text: string) => new Promise<void>((done) => void (armed = { at, text, done }));
  const server = createServer((client) => {
    if (down) return void client.destroy();
    const upstream = connect(redisPort, "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => undefined);
    }
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
    let replyDoomed = false;
    client.on("data", (bytes) => {
      if (armed && !replyDoomed && bytes.includes(armed.text)) {
        if (armed.at === "request") return cut(client, upstream);
        replyDoomed = true;
      }
      upstream.write(bytes);
    });
    upstream.on("data", (bytes) => {
      if (replyDoomed) return cut(client, upstream);
      client.write(bytes);
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    port: (server.address() as { port: number }).port,
    cutRequestWith: (text) => arm("request", text),
    cutReplyToRequestWith: (text) => arm("reply", text),
    restore: () => void (down = false),
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
