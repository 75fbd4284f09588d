import { describe, expect, it } from "vitest";
import { isInternalAddress } from "./addresses.ts";

describe("isInternalAddress", () => {
  it.each([
    ["127.0.0.1", true], ["10.1.2.3", true], ["172.31.0.1", true], ["192.168.1.1", true], ["169.254.169.254", true], ["100.64.0.1", true],
    ["0.0.0.0", true], ["224.0.0.1", true], ["::1", true], ["::", true], ["fd00::1", true], ["fe80::1", true], ["::ffff:127.0.0.1", true],
    ["::ffff:10.0.0.1", true], ["not-an-ip", true],
    ["8.8.8.8", false], ["1.1.1.1", false], ["2606:4700:4700::1111", false], ["::ffff:8.8.8.8", false], ["172.32.0.1", false],
  ])("%s -> %s", (address, internal) => {
    expect(isInternalAddress(address)).toBe(internal);
  });
});
