/**
 * Enqueues records into an LmdbQueue as fast as it can and prints each acknowledged id, until it
 * is killed: the durability test SIGKILLs it and checks every printed id is in the store.
 */
import { writeSync } from "node:fs";
import { keccak256, toHex } from "viem";
import { LmdbQueue } from "../lmdb-queue.ts";
import { recordId, type InferenceRecord } from "../records.ts";

const queue = new LmdbQueue({ path: process.env.QUEUE_PATH! });
for (let round = 0; ; round++) {
  const items = Array.from({ length: 20 }, (_, i) => {
    const record: InferenceRecord = {
      inputHash: keccak256(toHex(`kill:${round}:${i}:in`)),
      outputHash: keccak256(toHex(`kill:${round}:${i}:out`)),
      settlementType: i % 5 === 0 ? "settle" : "settle-batch",
    };
    return { id: recordId(record), record };
  });
  const results = await queue.enqueue(items);
  // Only now, after the commit was fsync'd, is anything acknowledged.
  writeSync(1, results.map((r) => r.id).join("\n") + "\n");
}
