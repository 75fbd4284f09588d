/**
 * Tree building off the event loop, in worker threads: one per core up to two, started on first use,
 * holding the process open only while a build is in flight. Values travel packed (compact.ts): a
 * buffer copied, not millions of strings cloned. Each thread hashes its part of the leaves; one then
 * sorts them and hashes the nodes. A thread that dies fails its builds and is started anew next time.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { packValues } from "./compact.ts";
import type { BuiltTree } from "./tree.ts";

/** Leaves packed by packValues, `length` of them. */
export interface PackedPart {
  packed: Uint8Array;
  length: number;
}

export type TreeJob =
  | { id: number; kind: "hash"; types: readonly string[]; packed: Uint8Array; length: number }
  | { id: number; kind: "tree"; hashes: Uint8Array };
export type TreeJobResult = { id: number; hashes: Uint8Array } | { id: number; nodes: Uint8Array; treeIndices: Uint32Array } | { id: number; error: string };

/** Threads that hash leaves side by side: the machine's cores, at most two. */
export const TREE_THREADS = Math.min(2, availableParallelism());

interface Thread {
  worker: Worker;
  pending: Map<number, { resolve(r: TreeJobResult): void; reject(e: Error): void }>;
}

const threads: (Thread | undefined)[] = [];
let nextId = 0;

function start(slot: number): Thread {
  const entry = new URL("./tree-worker.ts", import.meta.url).href;
  // The sources run as TypeScript through tsx, whose hooks a worker thread does not inherit: register them first.
  const tsx = import.meta.resolve("tsx/esm/api");
  const boot = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); })`;
  const thread: Thread = { worker: new Worker(boot, { eval: true }), pending: new Map() };
  const fail = (e: Error) => {
    if (threads[slot] === thread) threads[slot] = undefined;
    for (const p of thread.pending.values()) p.reject(e);
    thread.pending.clear();
  };
  thread.worker.on("message", (m: TreeJobResult) => {
    const p = thread.pending.get(m.id);
    thread.pending.delete(m.id);
    if (thread.pending.size === 0) thread.worker.unref();
    if ("error" in m) p?.reject(new Error(m.error));
    else p?.resolve(m);
  });
  thread.worker.on("error", fail);
  thread.worker.on("exit", (code) => fail(new Error(`a tree thread exited (code ${code})`)));
  return thread;
}

function run(slot: number, job: TreeJob, transfer: ArrayBuffer[] = []): Promise<TreeJobResult> {
  const thread = (threads[slot] ??= start(slot));
  return new Promise((resolve, reject) => {
    thread.pending.set(job.id, { resolve, reject });
    thread.worker.ref();
    thread.worker.postMessage(job, transfer);
  });
}

/** Leaves packed per turn of the event loop (about 20 ms of work), so packing a big batch never stalls it for long. */
const PACK_SLICE = 8_192;

/** The values packed in TREE_THREADS parts of about equal size, one per thread. */
export async function packInParts(types: readonly string[], values: readonly (readonly unknown[])[]): Promise<PackedPart[]> {
  const size = Math.ceil(values.length / TREE_THREADS);
  const parts: PackedPart[] = [];
  for (let start = 0; start < values.length; start += size) {
    const end = Math.min(start + size, values.length);
    const slices: Buffer[] = [];
    for (let at = start; at < end; at += PACK_SLICE) {
      if (at > start) await new Promise(setImmediate);
      try {
        slices.push(packValues(types, values.slice(at, Math.min(at + PACK_SLICE, end))));
      } catch (e) {
        throw new Error((e as Error).message.replace(/^leaf #(\d+)/, (_, i: string) => `leaf #${at + Number(i)}`));
      }
    }
    parts.push({ packed: slices.length === 1 ? slices[0]! : Buffer.concat(slices), length: end - start });
  }
  return parts;
}

/** buildTree(types, values) in the worker threads, from the values packed in parts (packInParts), in order. */
export async function buildTreeOffThread(types: readonly string[], parts: readonly PackedPart[]): Promise<BuiltTree> {
  if (parts.reduce((n, p) => n + p.length, 0) === 0) throw new Error("a tree needs at least one leaf");
  const hashed = await Promise.all(parts.map((p, i) => run(i % TREE_THREADS, { id: nextId++, kind: "hash", types: [...types], packed: p.packed, length: p.length })));
  // A buffer of its own (not Node's pool, which a transfer would take away from every other Buffer).
  const hashes = new Uint8Array(hashed.reduce((n, r) => n + (r as { hashes: Uint8Array }).hashes.length, 0));
  hashed.reduce((at, r) => (hashes.set((r as { hashes: Uint8Array }).hashes, at), at + (r as { hashes: Uint8Array }).hashes.length), 0);
  const built = (await run(0, { id: nextId++, kind: "tree", hashes }, [hashes.buffer as ArrayBuffer])) as { nodes: Uint8Array; treeIndices: Uint32Array };
  return { nodes: Buffer.from(built.nodes.buffer, built.nodes.byteOffset, built.nodes.byteLength), treeIndices: built.treeIndices };
}

/** Ends the threads (shutdown, tests); builds in flight fail. */
export async function stopTreeThread(): Promise<void> {
  const stopping = threads.splice(0);
  await Promise.all(stopping.map((t) => t?.worker.terminate()));
}
