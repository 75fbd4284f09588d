import { readFileSync } from "node:fs";
import { createServer } from "node:net";

/**
 * A TCP port on 127.0.0.1 that is free now and stays free until the caller binds it, unless another
 * caller of this function picks the same one meanwhile. It is drawn below the OS's ephemeral range:
 * a port the OS picked (listen on port 0) can be handed to any outgoing connection's local end the
 * moment it is released, and a server started on it then fails with "address already in use".
 */
export async function freePort(): Promise<number> {
  const [ephemeralLow] = ephemeralRange();
  const [from, to] = [10_000, ephemeralLow - 1];
  if (to - from >= 1_000) {
    for (let attempt = 0; attempt < 50; attempt++) {
      const port = from + Math.floor(Math.random() * (to - from + 1));
      if (await canListen(port)) return port;
    }
  }
  return osPickedPort();
}

/**
 * A port free now whose `offset` companion is free too (a Redis Cluster node listens on its port and
 * on port + 10000 for the cluster bus), both below the ephemeral range.
 */
export async function freePortPair(offset: number): Promise<number> {
  const [from, to] = [10_000, ephemeralRange()[0] - 1 - offset];
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = from + Math.floor(Math.random() * (to - from + 1));
    if ((await canListen(port)) && (await canListen(port + offset))) return port;
  }
  throw new Error(`no free port pair ${offset} apart below the ephemeral range`);
}

/** The range the OS draws ephemeral ports from (Linux: ip_local_port_range; elsewhere the IANA range). */
function ephemeralRange(): [number, number] {
  try {
    const [low, high] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    if (Number.isInteger(low) && Number.isInteger(high)) return [low!, high!];
  } catch {
    // not Linux
  }
  return [49_152, 65_535];
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

function osPickedPort(): Promise<number> {
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
