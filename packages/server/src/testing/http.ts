/** `@facilitator/server/testing`, test support: a request handler (an express app) on a free 127.0.0.1 port, and a JSON POST. */
import { createServer, type RequestListener, type Server } from "node:http";

export interface Listening {
  url: string;
  server: Server;
  close(): Promise<void>;
}

/** Serves `handler` (an express app, or a plain node handler) on 127.0.0.1; `close` ends open connections too. */
export function listen(handler: RequestListener): Promise<Listening> {
  return new Promise((resolve, reject) => {
    const server = createServer(handler);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      resolve({
        url: `http://127.0.0.1:${port}`,
        server,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
    server.once("error", reject);
  });
}

/** `fetch` POSTing `body` as JSON: the Response as it comes. */
export const postJson = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
export { webhookReceiver, type WebhookReceiver, type ReceivedNotice } from "./webhook-receiver.ts";
