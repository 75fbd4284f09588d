import { describe, expect, it } from "vitest";
import { keySlot } from "@facilitator/redis";
import { QueueLayout } from "./keys.ts";

const ids = Array.from({ length: 300 }, (_, i) => `0x${i.toString(16).padStart(64, "0")}`);

describe("QueueLayout", () => {
  it.each([
    ["bull", "bull:inference:inf:"],
    ["{bull}", "{bull}:inference:inf:"],
  ])("with one partition keeps the names a single Redis has always used (prefix %s)", (prefix, base) => {
    const [k] = new QueueLayout(prefix, "inference", 1).partitions;
    expect([k!.record("0xab"), k!.counts, k!.waiting("batch"), k!.batch("b1"), k!.answer("c")]).toEqual([
      `${base}rec:0xab`, `${base}counts`, `${base}waiting:batch`, `${base}batch:b1`, `${base}answer:c`,
    ]);
  });

  it("with n partitions gives each one hash tag (the prefix's own tag dropped), spread over the slot space", () => {
    const layout = new QueueLayout("{bull}", "inference", 3);
    const slots = layout.partitions.map((k) => {
      const keys = [k.record("0xab"), k.counts, k.open, k.parked, k.unscheduled, k.waiting("gateway"), k.batch("b"), k.answer("c")];
      expect(keys.every((key) => key.startsWith("bull:inference:inf:{"))).toBe(true);
      expect(new Set(keys.map(keySlot)).size).toBe(1);
      return keySlot(k.counts);
    });
    slots.forEach((slot, i) => expect(Math.floor((slot * 3) / 16_384)).toBe(i));
  });

  it("puts every record in one partition, about evenly, and finds a batch's partition from its id", () => {
    const layout = new QueueLayout("{bull}", "q", 3);
    const per = [0, 0, 0];
    for (const id of ids) per[layout.recordPartition(id)]!++;
    for (const n of per) expect(n).toBeGreaterThan(60);
    for (const p of [0, 1, 2]) expect(layout.batchPartition(layout.batchIdIn("000001-abc", p))).toBe(p);
    expect(() => layout.batchPartition("000001-abc")).toThrow(/names no partition/);
    expect(() => layout.batchPartition("000001-abc-p3")).toThrow(/names no partition/);
  });

  it("leaves ids alone with one partition", () => {
    const layout = new QueueLayout("bull", "q", 1);
    expect(layout.batchIdIn("000001-abc", 0)).toBe("000001-abc");
    expect(layout.batchPartition("000001-abc")).toBe(0);
    expect(layout.recordPartition(ids[7]!)).toBe(0);
    expect(() => new QueueLayout("bull", "q", 0)).toThrow(/partitions/);
  });
});
