import { describe, expect, it } from "vitest";
import { parseRedisUrl } from "./url.ts";

describe("parseRedisUrl", () => {
  it.each([
    ["redis://127.0.0.1:6379", { kind: "single", url: "redis://127.0.0.1:6379" }],
    ["rediss://:s3cret-pass@cache.internal:6380/2", { kind: "single", url: "rediss://:s3cret-pass@cache.internal:6380/2", password: "s3cret-pass" }],
    ["redis+cluster://10.0.0.1:7000,10.0.0.2:7001", { kind: "cluster", nodes: [{ host: "10.0.0.1", port: 7000 }, { host: "10.0.0.2", port: 7001 }], tls: false }],
    ["rediss+cluster://app:p%40ss@a.example:7000/", { kind: "cluster", nodes: [{ host: "a.example", port: 7000 }], username: "app", password: "p@ss", tls: true }],
    ["redis+cluster://:pw@[::1]:7000, node-b/0", { kind: "cluster", nodes: [{ host: "::1", port: 7000 }, { host: "node-b", port: 6379 }], password: "pw", tls: false }],
    ["REDIS+CLUSTER://h:1", { kind: "cluster", nodes: [{ host: "h", port: 1 }], tls: false }],
  ])("reads %s", (url, expected) => {
    expect(parseRedisUrl(url)).toEqual(expected);
  });

  it.each([
    ["localhost:6379", /^not a redis:\/\//],
    ["http://cache:6379", /^not a redis:\/\//],
    ["redis://h1:7000,h2:7001", /several hosts/],
    ["redis+cluster://", /one is missing/],
    ["redis+cluster://h1:7000,", /one is missing/],
    ["redis+cluster://h1:7000/3", /only database 0/],
    ["redis+cluster://h1:7000?tls=1", /no query/],
    ["redis+cluster://h1:99999", /port must be 1-65535/],
    ["redis+cluster://h1:70a0", /is not host:port/],
    ["redis+cluster://u:%zz@h1:7000", /percent-encoding/],
  ])("refuses %s", (url, message) => {
    expect(() => parseRedisUrl(url)).toThrow(message);
  });

  it("never quotes the password when refusing", () => {
    for (const url of ["redis+cluster://u:topsecretvalue@h1:0", "redis+cluster://u:topsecretvalue@h 1:7000"]) {
      expect(() => parseRedisUrl(url)).toThrow();
      try {
        parseRedisUrl(url);
      } catch (e) {
        expect((e as Error).message).not.toContain("topsecretvalue");
      }
    }
  });
});
