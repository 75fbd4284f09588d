import { describe, expect, it } from "vitest";
import { crc16, hashedPart, keySlot, SLOTS, spreadTags } from "./slots.ts";

describe("key slots", () => {
  // Expected values from `CLUSTER KEYSLOT` on redis-server 7.0 (and the spec's CRC16 check value 0x31C3).
  it.each([
    ["123456789", 12739],
    ["foo", 12182],
    ["bar", 5061],
    ["hello", 866],
    ["{user1000}.following", 3443],
    ["foo{}{bar}", 8363],
    ["foo{{bar}}zap", 4015],
    ["foo{bar}{zap}", 5061],
    ["é", 10180],
    ["x402:ledger:entry:abc", 5166],
  ])("%s is in slot %i", (key, slot) => {
    expect(keySlot(key)).toBe(slot);
  });

  it("hashes the tag alone when there is one", () => {
    expect(crc16("123456789")).toBe(0x31c3);
    expect(hashedPart("a{b}c")).toBe("b");
    expect(hashedPart("a{}c")).toBe("a{}c");
    expect(hashedPart("a{b")).toBe("a{b");
  });

  it("spreads tags one per equal range of slots, the same in every process", () => {
    for (const count of [1, 3, 16]) {
      const tags = spreadTags("ledger", count);
      expect(tags).toEqual(spreadTags("ledger", count));
      tags.forEach((tag, i) => {
        const slot = keySlot(`x{${tag}}y`);
        expect(slot).toBeGreaterThanOrEqual(Math.floor((i * SLOTS) / count));
        expect(slot).toBeLessThan(Math.floor(((i + 1) * SLOTS) / count));
      });
    }
    expect(() => spreadTags("q", 0)).toThrow(/tag count/);
  });
});
