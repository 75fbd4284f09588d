/**
 * TRUST_PROXY: which peers may tell us the client's address in `X-Forwarded-For`. Behind a load
 * balancer every request comes from the balancer, so rate limits keyed by `req.ip` would count the
 * balancer as one client; trusting it (and only it) makes `req.ip` the real client. The value is
 * handed to express's `trust proxy` setting.
 *
 * Accepted: unset, `false` or `0` (trust nothing: the default); a hop count (`1`: one balancer in
 * front); or a comma-separated list of proxy addresses and CIDRs (`10.0.0.0/8, 2001:db8::/32`) and
 * express's names `loopback`, `linklocal`, `uniquelocal`. Refused:
 * - `true`: it trusts whatever the left-most `X-Forwarded-For` says, so any client could pick its
 *   own address and rate-limit bucket;
 * - ranges wider than a balancer's network (IPv4 shorter than /8, IPv6 shorter than /16, an
 *   IPv4-mapped IPv6 range shorter than /104, an IPv6 range holding every IPv4-mapped address): a
 *   few of them together (`0.0.0.0/1,128.0.0.0/1,::/1,8000::/1`) are `true` under another name;
 * - anything express itself would not compile: the list is compiled here with express's own parser
 *   (the proxy-addr express depends on), so a value express would throw on at start is a one-line
 *   configuration error instead of a stack trace.
 *
 * `clientKey` says who "one client" is for the per-client limits: an IPv4 address, or an IPv6 /64.
 */
import { createRequire } from "node:module";
import { isIP, isIPv4 } from "node:net";

export type TrustProxy = false | number | string[];

const NAMES = ["loopback", "linklocal", "uniquelocal"];
/** The shortest prefixes accepted: a balancer's network is never wider. */
const MIN_IPV4_PREFIX = 8;
const MIN_IPV6_PREFIX = 16;
/** An IPv4-mapped IPv6 range (`::ffff:a.b.c.d/n`) covers IPv4 addresses as /(n - 96). */
const MAPPED_PREFIX = 96;

interface IpAddress {
  kind(): "ipv4" | "ipv6";
  match(range: IpAddress, bits: number): boolean;
  isIPv4MappedAddress(): boolean;
  toIPv4Address(): IpAddress;
  prefixLengthFromSubnetMask(): number | null;
  toString(): string;
  parts: number[];
}

// Express's own parser: the proxy-addr that express compiles `trust proxy` with, and the ipaddr.js it
// parses addresses with, resolved from express itself so the check and the start can never disagree.
const fromExpress = createRequire(createRequire(import.meta.url).resolve("express"));
const proxyAddr = fromExpress("proxy-addr") as { compile(trust: string[]): (address: string, hop: number) => boolean };
const ipaddr = createRequire(fromExpress.resolve("proxy-addr"))("ipaddr.js") as { parse(text: string): IpAddress };

export function parseTrustProxy(raw: string | undefined): { ok: true; value: TrustProxy } | { ok: false; problem: string } {
  const text = (raw ?? "").trim();
  if (text === "" || text.toLowerCase() === "false" || text === "0") return { ok: true, value: false };
  if (text.toLowerCase() === "true") {
    return {
      ok: false,
      problem: `"true" would believe any X-Forwarded-For, so a client could choose its own address and rate-limit bucket; give the number of proxies in front (e.g. 1) or their addresses/CIDRs`,
    };
  }
  if (/^\d+$/.test(text)) {
    const hops = Number(text);
    if (hops > 10) return { ok: false, problem: `${hops} proxy hops is more than any deployment has (valid: 0 to 10, or addresses/CIDRs)` };
    return { ok: true, value: hops };
  }
  const entries = text.split(",").map((s) => s.trim()).filter(Boolean);
  const checked = entries.map((entry) => ({ entry, prefix: prefixOf(entry) }));
  const bad = checked.filter((c) => c.prefix === "invalid").map((c) => c.entry);
  if (bad.length) {
    return {
      ok: false,
      problem: `${bad.map((b) => `"${b}"`).join(", ")} ${bad.length === 1 ? "is" : "are"} not an IP address, CIDR or one of ${NAMES.join(", ")} (valid: false, a hop count, or a comma-separated list of those)`,
    };
  }
  const wide = checked.filter((c) => c.prefix === "too-wide").map((c) => c.entry);
  if (wide.length) {
    return {
      ok: false,
      problem: `${wide.map((w) => `"${w}"`).join(", ")} ${wide.length === 1 ? "trusts" : "trust"} far more than a load balancer's network, so clients there could choose their own address and rate-limit bucket (the shortest prefixes accepted: /${MIN_IPV4_PREFIX} for IPv4, /${MIN_IPV6_PREFIX} for IPv6); list the balancers' addresses or subnets`,
    };
  }
  try {
    proxyAddr.compile(entries);
  } catch (e) {
    return { ok: false, problem: `express does not accept it (${(e as Error).message})` };
  }
  return { ok: true, value: entries };
}

/**
 * An entry's verdict: `ok` (a name, an address, or a range no wider than the minimum prefixes),
 * `too-wide`, or `invalid` (not an address, a prefix out of range, a netmask with holes).
 */
function prefixOf(entry: string): "ok" | "too-wide" | "invalid" {
  if (NAMES.includes(entry.toLowerCase())) return "ok";
  const [address, range, ...rest] = entry.split("/");
  if (rest.length || !address) return "invalid";
  const family = isIP(address);
  if (!family) return "invalid";
  const max = family === 4 ? 32 : 128;
  let bits: number;
  if (range === undefined) bits = max;
  else if (/^\d+$/.test(range)) bits = Number(range);
  else if (family === 4 && isIPv4(range)) bits = ipaddr.parse(range).prefixLengthFromSubnetMask() ?? -1; // an IPv4 netmask, as express also accepts
  else return "invalid";
  if (bits < 0 || bits > max) return "invalid";
  if (family === 4) return bits < MIN_IPV4_PREFIX ? "too-wide" : "ok";
  const ip = parseIp(address);
  if (!ip) return "ok"; // an address node reads and express does not (::1.2.3.4): the compile below says so in express's words
  // express matches IPv4 clients against an IPv4-mapped range: its width is counted in IPv4 bits.
  if (ip.isIPv4MappedAddress()) return bits < MAPPED_PREFIX + MIN_IPV4_PREFIX ? "too-wide" : "ok";
  if (bits < MIN_IPV6_PREFIX) return "too-wide";
  // A range holding all of ::ffff:0:0/96 holds every IPv4 client too, for any proxy-addr that maps them into it.
  if (bits <= MAPPED_PREFIX && ipaddr.parse("::ffff:0:0").match(ip, bits)) return "too-wide";
  return "ok";
}

/**
 * Who a request counts as for per-client limits, from its address (`req.ip`): an IPv4 address as it
 * is (an IPv4-mapped IPv6 address as its IPv4 address), an IPv6 address by its /64. A /64 is what
 * one subscriber is usually given, so stepping through the addresses of one's own /64 buys no new
 * bucket; anything that is not an address is its own key.
 */
export function clientKey(address: string | undefined): string {
  if (!address) return "unknown";
  const bare = address.replace(/%.*$/, ""); // an IPv6 zone (fe80::1%eth0) names the interface, not the client
  if (isIPv4(bare)) return bare;
  const ip = isIP(bare) === 6 ? parseIp(bare) : undefined;
  if (!ip) return address;
  if (ip.isIPv4MappedAddress()) return ip.toIPv4Address().toString();
  return `${ip.parts.slice(0, 4).map((p) => p.toString(16)).join(":")}::/64`;
}

function parseIp(text: string): IpAddress | undefined {
  try {
    return ipaddr.parse(text);
  } catch {
    return undefined;
  }
}
