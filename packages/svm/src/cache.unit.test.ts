import { describe, expect, it } from "vitest";
import { BoundedCache } from "./cache.ts";

describe("BoundedCache", () => {
  it.each([
    { capacity: 1, writes: ["a", "b"], kept: ["b"], forgotten: ["a"] },
    { capacity: 2, writes: ["a", "b", "c"], kept: ["b", "c"], forgotten: ["a"] },
    { capacity: 3, writes: ["a", "b", "c"], kept: ["a", "b", "c"], forgotten: [] },
    // Writing a key again replaces its value and evicts nothing.
    { capacity: 2, writes: ["a", "b", "a", "a"], kept: ["a", "b"], forgotten: [] },
    // The oldest write is forgotten first.
    { capacity: 2, writes: ["a", "b", "c", "d"], kept: ["c", "d"], forgotten: ["a", "b"] },
  ])("capacity $capacity, writes $writes: keeps $kept", ({ capacity, writes, kept, forgotten }) => {
    const cache = new BoundedCache<string, number>(capacity);
    writes.forEach((k, i) => cache.set(k, i));
    expect(cache.size).toBe(kept.length);
    for (const k of kept) expect(cache.get(k)).toBe(writes.lastIndexOf(k));
    for (const k of forgotten) expect(cache.get(k)).toBeUndefined();
  });

  it("never holds more than its capacity", () => {
    const cache = new BoundedCache<number, number>(100);
    for (let i = 0; i < 10_000; i++) cache.set(i, i);
    expect(cache.size).toBe(100);
    expect(cache.get(9_999)).toBe(9_999);
    expect(cache.get(9_899)).toBeUndefined();
  });

  it.each([0, -1, 1.5, Number.NaN])("refuses capacity %s", (capacity) => {
    expect(() => new BoundedCache(capacity)).toThrow(RangeError);
  });
});
