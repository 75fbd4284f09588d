/**
 * REDIS_URL: one Redis, or the seed nodes of a Redis Cluster.
 *
 *   redis://[user:password@]host:port[/db]           one Redis, read by ioredis itself
 *   rediss://...                                      the same over TLS
 *   redis+cluster://[user:password@]host:port,host:port,...   a cluster (ioredis `Cluster`), TLS with rediss+cluster://
 *
 * ioredis's Cluster takes a list of seed nodes and one set of options for every node rather than a URL;
 * the cluster form says the same in one string: the credentials once, then the nodes. Any one reachable
 * node is enough (the client learns the rest from it), but listing several survives one being down.
 * A cluster has database 0 only, so there is no `/db`.
 */
export interface RedisNode {
  host: string;
  port: number;
}

export type RedisTarget =
  | { kind: "single"; url: string; password?: string }
  | { kind: "cluster"; nodes: RedisNode[]; username?: string; password?: string; tls: boolean };

const SINGLE = ["redis:", "rediss:"];
const CLUSTER = /^(rediss?)\+cluster:\/\/(.*)$/i;

/** Reads a REDIS_URL, or throws saying what is wrong (never quoting the password). */
export function parseRedisUrl(raw: string): RedisTarget {
  const text = raw.trim();
  const cluster = CLUSTER.exec(text);
  if (!cluster) {
    if (/^rediss?:\/\/[^/]*,/i.test(text)) throw new Error("several hosts: a cluster is written redis+cluster://host:port,host:port");
    let u: URL;
    try {
      u = new URL(text);
    } catch {
      throw new Error("not a redis://, rediss://, redis+cluster:// or rediss+cluster:// URL");
    }
    if (!SINGLE.includes(u.protocol)) throw new Error("not a redis://, rediss://, redis+cluster:// or rediss+cluster:// URL");
    if (!u.hostname) throw new Error("no host");
    return { kind: "single", url: text, ...(u.password ? { password: decodeURIComponent(u.password) } : {}) };
  }
  const tls = cluster[1]!.toLowerCase() === "rediss";
  let rest = cluster[2]!;
  if (/[?#]/.test(rest)) throw new Error("a cluster URL takes no query or fragment");
  // The path is after the node list; only database 0 exists on a cluster.
  const slash = rest.indexOf("/");
  if (slash >= 0) {
    if (!["", "0"].includes(rest.slice(slash + 1))) throw new Error("a Redis Cluster has only database 0; drop the /db from the URL");
    rest = rest.slice(0, slash);
  }
  const at = rest.lastIndexOf("@");
  const userinfo = at >= 0 ? rest.slice(0, at) : "";
  const list = at >= 0 ? rest.slice(at + 1) : rest;
  const colon = userinfo.indexOf(":");
  const username = decode(colon >= 0 ? userinfo.slice(0, colon) : userinfo);
  const password = colon >= 0 ? decode(userinfo.slice(colon + 1)) : "";
  const nodes = list.split(",").map((n) => n.trim());
  if (nodes.length === 0 || nodes.some((n) => n === "")) throw new Error("a cluster URL lists its nodes as host:port,host:port (one is missing)");
  return {
    kind: "cluster",
    nodes: nodes.map(parseNode),
    ...(username ? { username } : {}),
    ...(password ? { password } : {}),
    tls,
  };
}

/** `host:port`, `[ipv6]:port`, or a host alone (port 6379). */
function parseNode(text: string): RedisNode {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]/@\s]+))(?::(\d+))?$/.exec(text);
  if (!m) throw new Error(`cluster node "${text}" is not host:port`);
  const port = m[3] === undefined ? 6379 : Number(m[3]);
  if (!(port >= 1 && port <= 65535)) throw new Error(`cluster node "${text}": port must be 1-65535`);
  return { host: m[1] ?? m[2]!, port };
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new Error("the credentials are not valid percent-encoding");
  }
}
