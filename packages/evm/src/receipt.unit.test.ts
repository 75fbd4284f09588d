import { describe, expect, it } from "vitest";
import { pollWaits } from "./receipt.ts";

const first = (intervalMs: number, n: number) => {
  const waits = pollWaits(intervalMs);
  return Array.from({ length: n }, () => waits.next().value);
};

describe("pollWaits: the waits between receipt polls", () => {
  it.each([
    [50, [5, 10, 20, 40, 50, 50, 50]],
    [250, [25, 50, 100, 200, 250, 250, 250]],
    [1000, [100, 200, 400, 800, 1000, 1000, 1000]],
    [5, [1, 2, 4, 5, 5, 5, 5]],
    [1, [1, 1, 1, 1, 1, 1, 1]],
  ])("interval %i ms: %j", (interval, expected) => {
    expect(first(interval, expected.length)).toEqual(expected);
  });
});
