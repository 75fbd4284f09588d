/**
 * Which IP addresses a webhook may be sent to. Receivers are configured by the operator, but a URL whose
 * name resolves to a machine inside the network (a metadata service, an admin port, Redis) would turn
 * our POSTs into requests the operator never meant; unless allowed, only public unicast addresses pass.
 */
import { BlockList, isIP } from "node:net";

const INTERNAL = new BlockList();
for (const [net, bits] of [
  ["0.0.0.0", 8], ["10.0.0.0", 8], ["100.64.0.0", 10], ["127.0.0.0", 8], ["169.254.0.0", 16], ["172.16.0.0", 12],
  ["192.0.0.0", 24], ["192.0.2.0", 24], ["192.88.99.0", 24], ["192.168.0.0", 16], ["198.18.0.0", 15], ["198.51.100.0", 24],
  ["203.0.113.0", 24], ["224.0.0.0", 4], ["240.0.0.0", 4],
] as const) INTERNAL.addSubnet(net, bits, "ipv4");
for (const [net, bits] of [
  ["::", 128], ["::1", 128], ["64:ff9b::", 96], ["100::", 64], ["2001:db8::", 32], ["fc00::", 7], ["fe80::", 10], ["fec0::", 10], ["ff00::", 8],
] as const) INTERNAL.addSubnet(net, bits, "ipv6");

/** True for loopback, private, link-local, shared, documentation, multicast and reserved ranges (IPv4-mapped IPv6 by its IPv4). */
export function isInternalAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return true; // not an address: never trusted as a public one
  if (family === 4) return INTERNAL.check(address, "ipv4");
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped) return INTERNAL.check(mapped, "ipv4");
  return INTERNAL.check(address, "ipv6");
}
