/** The worker thread's side of thread.ts: hashes a part of the leaves, or builds the tree of all their hashes. */
import { parentPort } from "node:worker_threads";
import { hashPackedLeaves } from "./compact.ts";
import { keccakReady } from "./keccak.ts";
import { treeOfLeafHashes } from "./tree.ts";
import type { TreeJob, TreeJobResult } from "./thread.ts";

const port = parentPort!;

/** A typed array that owns its whole buffer can be handed over; one that shares Node's pool is copied. */
const owned = <T extends Uint8Array | Uint32Array>(a: T): T => (a.byteOffset === 0 && a.byteLength === a.buffer.byteLength ? a : (a.slice() as T));

port.on("message", async (job: TreeJob) => {
  try {
    await keccakReady;
    if (job.kind === "hash") {
      const h = hashPackedLeaves(job.types, job.packed, job.length);
      const hashes = owned(new Uint8Array(h.buffer, h.byteOffset, h.byteLength));
      const reply: TreeJobResult = { id: job.id, hashes };
      port.postMessage(reply, [hashes.buffer as ArrayBuffer]);
    } else {
      const built = treeOfLeafHashes(job.hashes);
      const nodes = owned(new Uint8Array(built.nodes.buffer, built.nodes.byteOffset, built.nodes.byteLength));
      const treeIndices = owned(built.treeIndices);
      const reply: TreeJobResult = { id: job.id, nodes, treeIndices };
      port.postMessage(reply, [nodes.buffer as ArrayBuffer, treeIndices.buffer as ArrayBuffer]);
    }
  } catch (e) {
    const reply: TreeJobResult = { id: job.id, error: (e as Error).message };
    port.postMessage(reply);
  }
});
