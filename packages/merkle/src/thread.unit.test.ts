/** The worker threads (in-process, no child process): the same tree as inline, errors carried back, restart after a stop. */
import { afterAll, describe, expect, it } from "vitest";
import { packValues } from "./compact.ts";
import { keccakReady } from "./keccak.ts";
import { batchValuesV2, TYPES_V2 } from "./testing/values.ts";
import { buildTreeOffThread, packInParts, stopTreeThread, TREE_THREADS } from "./thread.ts";
import { buildTree } from "./tree.ts";

await keccakReady;
afterAll(stopTreeThread);

describe("buildTreeOffThread", () => {
  it("builds the tree buildTree builds, from one part or several, for batches in flight together", async () => {
    expect(TREE_THREADS).toBeGreaterThanOrEqual(1);
    const batches = [1, 2, 3, 1_001].map((n) => batchValuesV2(n, `thread${n}`));
    const built = await Promise.all(batches.map(async (values) => buildTreeOffThread(TYPES_V2, await packInParts(TYPES_V2, values))));
    batches.forEach((values, i) => {
      const inline = buildTree(TYPES_V2, values);
      expect(built[i]!.nodes.equals(inline.nodes)).toBe(true);
      expect(Array.from(built[i]!.treeIndices)).toEqual(Array.from(inline.treeIndices));
    });
  });

  it("fails a build whose values do not unpack, and keeps serving", async () => {
    await expect(buildTreeOffThread(["uint256"], [{ packed: Buffer.from("0201", "hex"), length: 1 }])).rejects.toThrow(/end early/);
    await expect(buildTreeOffThread(["uint256"], [])).rejects.toThrow(/at least one leaf/);
    // Packed a slice at a time, a bad value is still named by its place in the whole batch.
    const bad = batchValuesV2(10_000);
    bad[9_000] = [...bad[9_000]!.slice(0, 6), "0xabc"];
    await expect(packInParts(TYPES_V2, bad)).rejects.toThrow(/^leaf #9000: field 6/);
    const two = batchValuesV2(2);
    // Three parts of one leaf, two and none: the tree is the one of all the leaves, in order.
    const three = [...two, ...batchValuesV2(1, "third")];
    const parts = [{ packed: packValues(TYPES_V2, [three[0]!]), length: 1 }, { packed: packValues(TYPES_V2, three.slice(1)), length: 2 }, { packed: Buffer.alloc(0), length: 0 }];
    expect((await buildTreeOffThread(TYPES_V2, parts)).nodes.equals(buildTree(TYPES_V2, three).nodes)).toBe(true);
  });

  it("fails the builds in flight when stopped, and starts a new thread after", async () => {
    const big = batchValuesV2(20_000); // far longer to build than the stop takes
    const failed = expect(buildTreeOffThread(TYPES_V2, await packInParts(TYPES_V2, big))).rejects.toThrow(/exited/);
    await stopTreeThread();
    await failed;
    const values = batchValuesV2(4);
    expect((await buildTreeOffThread(TYPES_V2, await packInParts(TYPES_V2, values))).nodes.equals(buildTree(TYPES_V2, values).nodes)).toBe(true);
  });
});
