/**
 * TRUST_PROXY: which peers may tell us the client's address in `X-Forwarded-For`. Behind a load
 * balancer every request comes from the balancer, so rate limits keyed by `req.ip` would count the
 * balancer as one client; trusting it (and only it) makes `req.ip` the real client. The value is
 * handed to express's `trust proxy` setting.
 *
 * Accepted: unset, `false` or `0` (trust nothing: the default); a hop count (`1`: one balancer in
 * front); or a comma-separated list of proxy addresses and CIDRs (`10.0.0.0/8, 2001:db8::/32`) and
 * express's names `loopback`, `linklocal`, `uniquelocal`. `true` is refused: it trusts whatever the
 * left-most `X-Forwarded-For` says, so any client could pick its own address and rate-limit bucket.
 */
import { isIP, isIPv4 } from "node:net";

export type TrustProxy = false | number | string[];

const NAMES = ["loopback", "linklocal", "uniquelocal"];

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
  const bad = entries.filter((e) => !validEntry(e));
  if (bad.length) {
    return {
      ok: false,
      problem: `${bad.map((b) => `"${b}"`).join(", ")} ${bad.length === 1 ? "is" : "are"} not an IP address, CIDR or one of ${NAMES.join(", ")} (valid: false, a hop count, or a comma-separated list of those)`,
    };
  }
  return { ok: true, value: entries };
}

function validEntry(entry: string): boolean {
  if (NAMES.includes(entry.toLowerCase())) return true;
  const [address, range, ...rest] = entry.split("/");
  if (rest.length || !address) return false;
  const family = isIP(address);
  if (!family) return false;
  if (range === undefined) return true;
  if (/^\d+$/.test(range)) return Number(range) <= (family === 4 ? 32 : 128);
  return family === 4 && isIPv4(range); // an IPv4 netmask, as express also accepts
}
