import { afterAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Hex } from "viem";
import { repoRoot } from "@facilitator/devnet";
import { LmdbQueue } from "./lmdb-queue.ts";

const dir = mkdtempSync(join(tmpdir(), "durable-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("LmdbQueue durability", () => {
  it("keeps every acknowledged record when its process is killed with SIGKILL", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(new URL("./testing/enqueue-child.ts", import.meta.url))], {
      cwd: repoRoot,
      env: { ...process.env, QUEUE_PATH: dir },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const acked: Hex[] = [];
    let partial = "";
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_c, signal) => resolve(signal)));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`child acknowledged only ${acked.length} records: ${stderr}`)), 30_000);
      child.stdout.on("data", (d) => {
        const lines = (partial + d).split("\n");
        partial = lines.pop()!;
        acked.push(...(lines as Hex[]));
        if (acked.length >= 2000) {
          child.kill("SIGKILL"); // mid-stream: more enqueues are in flight
          clearTimeout(timer);
          resolve();
        }
      });
    });
    expect(await exited).toBe("SIGKILL");

    const queue = new LmdbQueue({ path: dir });
    try {
      const entries = await queue.getMany(acked);
      expect(entries.filter((e) => e?.status !== "queued")).toEqual([]);
      const stats = await queue.stats();
      expect(stats.records.queued).toBeGreaterThanOrEqual(acked.length);
      // The store is whole: the waiting records form batches as usual.
      const formed = await queue.formBatch("batch", { maxSize: 100, maxWaitMs: 0 });
      expect(formed.batch?.recordIds).toHaveLength(100);
    } finally {
      await queue.close();
    }
  });
});
