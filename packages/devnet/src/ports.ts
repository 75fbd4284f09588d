import { createServer } from "node:net";

/** A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/**
 * A URL whose connections are refused. Port 2 is privileged and outside the
 * ephemeral range, so no test server can be handed it while a test relies on
 * it staying closed (a freed ephemeral port can be reused by a parallel test).
 * Port 1 would not do: fetch refuses it as a "bad port" before connecting.
 */
export const refusingUrl = "http://127.0.0.1:2";
