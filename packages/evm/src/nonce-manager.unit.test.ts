import { describe, expect, it } from "vitest";
import { NonceManager } from "./nonce-manager.ts";

/** The node's pending count is the only input; a counter stands in for the node here (pure logic). */
const fromNode = (count: number) => {
  const node = { count, asked: 0 };
  return { node, manager: new NonceManager(async () => (node.asked++, node.count)) };
};

describe("NonceManager", () => {
  it("hands out distinct consecutive nonces to concurrent callers, asking the node once", async () => {
    const { node, manager } = fromNode(7);
    const nonces = await Promise.all(Array.from({ length: 50 }, () => manager.acquire()));
    expect([...nonces].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => 7 + i));
    expect(node.asked).toBe(1);
  });

  it("reuses a nonce given back when nothing later was handed out", async () => {
    const { manager } = fromNode(0);
    expect(await manager.acquire()).toBe(0);
    expect(manager.giveBack(0)).toBe("reused");
    expect(await manager.acquire()).toBe(0);
  });

  it("reports a gap when later nonces are already out", async () => {
    const { manager } = fromNode(0);
    await manager.acquire();
    await manager.acquire();
    expect(manager.giveBack(0)).toBe("gap");
    expect(await manager.acquire()).toBe(2);
    expect([...manager.reserved].sort()).toEqual([1, 2]);
  });

  it("moves forward, never back, when the node knows of more transactions", async () => {
    const { node, manager } = fromNode(3);
    await manager.acquire();
    node.count = 10;
    await manager.resync();
    expect(await manager.acquire()).toBe(10);
    node.count = 2;
    await manager.resync();
    expect(await manager.acquire()).toBe(11);
  });
});

describe("NonceManager runs", () => {
  it("hands out consecutive runs that never interleave with concurrent callers", async () => {
    const manager = new NonceManager(async () => 7);
    const runs = await Promise.all([manager.acquire(2), manager.acquire(), manager.acquire(2), manager.acquire()]);
    const taken = runs.flatMap((first, i) => (i % 2 === 0 ? [first, first + 1] : [first]));
    expect(taken.sort((a, b) => a - b)).toEqual([7, 8, 9, 10, 11, 12]);
    for (const first of [runs[0]!, runs[2]!]) expect(runs).not.toContain(first + 1);
    expect(manager.reserved.size).toBe(6);
  });
});
