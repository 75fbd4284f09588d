/**
 * The search for a record's anchor: the batch the hint names, then an individual settlement event,
 * then every batch of the relay, newest first. Whatever the search finds is audited in full; the
 * first anchor that verifies wins, else the first that was found answers.
 */
import { isAddressEqual, type Hex } from "viem";
import { anchorNotFound, auditBatchEvent, auditSettlement, type LeafTarget } from "./anchor-checks.ts";
import { batchEventsForRoot, relayBatchEvents, relayBatchEventsForRoot, settlementEvents, type SettlementEvent } from "./chain.ts";
import type { AuditContext } from "./context.ts";
import { findLeaf, parseBatchDump } from "./dump.ts";
import { fetchHint, type SettlementHint } from "./hint.ts";
import { mapLimit } from "./limit.ts";
import type { InferenceLeaf } from "./formats.ts";
import { proofFromTree, rebuildTree } from "./merkle.ts";
import type { AuditReport } from "./report.ts";

export interface InferenceQuery {
  inputHash: Hex;
  outputHash: Hex;
  /** The facilitator's proof API for this record (`.../inference/settlements/:id`): a hint, never evidence. */
  hintUrl?: string;
  /** A hint already in hand (same meaning as `hintUrl`). */
  hint?: SettlementHint;
}

/** Where an inference is recorded, as read from the chain and the dumps (not yet verified). */
export type Located =
  | {
      kind: "batch";
      root: Hex;
      blobId: string;
      transactionHash: Hex;
      blockNumber: string;
      batchSize: string;
      /** Position in the dump's values; the proof is the dump's own path for it. */
      index: number;
      recordId?: string;
      /** The leaf's fields; `version` 2 leaves carry settlementType and metadataHash. */
      leaf: { version: InferenceLeaf["version"]; teeId: Hex; inputHash: Hex; outputHash: Hex; timestamp: string; settlementType?: string; metadataHash?: Hex; teeSignature: Hex };
      proof: Hex[];
    }
  | { kind: "single"; event: SettlementEvent["kind"]; inputHash: Hex; outputHash: Hex; transactionHash: Hex; blockNumber: string };

export interface LocateQuery {
  inputHash?: Hex;
  outputHash?: Hex;
  recordId?: string;
  /** Only this batch (e.g. the root a hint names). */
  root?: Hex;
  /** Newest batches to search (default 500). */
  maxBatches?: number;
  /**
   * The relay's batches to search, newest first, as the caller already holds them (e.g. an explorer's
   * cached listing of the relay's events): then no batch event is read from the chain.
   */
  batches?: readonly SearchBatch[];
  /**
   * Where a batch's dump comes from, by blob id: a caller's cache (a blob's content never changes
   * under its id), `undefined` when it cannot be read. Default: the aggregator, once per call.
   */
  dumps?: (blobId: string) => Promise<SearchableDump | undefined>;
  /** Also read the relay's individual Settlement events from the chain (default true; needs inputHash, not with root). */
  settlements?: boolean;
}

/** A batch as its BatchSettlement event states it. */
export interface SearchBatch {
  root: Hex;
  blobId: string;
  transactionHash: Hex;
  blockNumber: bigint | string;
  batchSize: bigint | string;
}

/** A dump read and its tree rebuilt: what a search needs of it. */
export interface SearchableDump {
  leaves: readonly InferenceLeaf[];
  recordIds: readonly string[];
  treeIndices: readonly number[];
  tree: readonly Hex[];
}

/** A dump's bytes made searchable, or undefined when they are not a dump whose tree rebuilds. */
export function searchableDump(bytes: Uint8Array): SearchableDump | undefined {
  const parsed = parseBatchDump(bytes);
  if (!parsed.ok) return undefined;
  const rebuilt = rebuildTree(parsed.value.leaves, parsed.value.treeIndices, parsed.value.leafHashes);
  if (!rebuilt.ok) return undefined;
  return { leaves: parsed.value.leaves, recordIds: parsed.value.recordIds, treeIndices: rebuilt.treeIndices, tree: rebuilt.tree };
}

/** Batches whose dumps are fetched at once while searching. */
const SEARCH_WIDTH = 8;

export async function auditInference(ctx: AuditContext, query: InferenceQuery): Promise<AuditReport> {
  const subject = { kind: "inference" as const, inputHash: query.inputHash, outputHash: query.outputHash };
  const notes: string[] = [];
  let hint = query.hint;
  if (!hint && query.hintUrl) {
    const fetched = await fetchHint(query.hintUrl);
    if (fetched.ok) hint = fetched.hint;
    else notes.push(`${fetched.error}; searching the chain alone`);
  }
  const target = (root: Hex): LeafTarget => ({
    inputHash: query.inputHash,
    outputHash: query.outputHash,
    claimedProof: hint?.proof && hint.root?.toLowerCase() === root.toLowerCase() ? hint.proof : undefined,
  });

  let fallback: AuditReport | undefined;
  // 1. The batch the hint names, if any contract anchored it.
  if (hint?.root) {
    const [event] = await batchEventsForRoot(ctx.chain, ctx.relay, hint.root, ctx.fromBlock);
    if (event) {
      const found = `batch ${event.root} (named by the facilitator's hint) in tx ${event.transactionHash}`;
      const report = await auditBatchEvent(ctx, subject, event, found, notes, target(event.root));
      if (report.verified) return report;
      fallback = report;
      notes.push("the batch the hint names does not verify; searching the relay's other batches");
    } else {
      notes.push(`the hint names root ${hint.root}, which no contract anchored; ignored`);
    }
  }

  // 2. An individual settlement event.
  const [individual] = await settlementEvents(ctx.chain, ctx.relay, query.inputHash, query.outputHash, ctx.fromBlock);
  if (individual && isAddressEqual(individual.emitter, ctx.relay)) return auditSettlement(ctx, subject, individual, notes);

  // 3. Every batch of the relay, newest first: the first whose dump holds the leaf and verifies wins.
  const events = (await relayBatchEvents(ctx.chain, ctx.relay, ctx.fromBlock)).reverse();
  const unreadable: string[] = [];
  let searched = 0;
  for (let start = 0; start < events.length; start += SEARCH_WIDTH) {
    const slice = events.slice(start, start + SEARCH_WIDTH);
    const dumps = await mapLimit(slice, SEARCH_WIDTH, (e) => ctx.getBlob(e.blobId));
    for (const [i, event] of slice.entries()) {
      const blob = dumps[i]!;
      if (!blob.ok) {
        unreadable.push(`${event.root} (${blob.error})`);
        continue;
      }
      searched++;
      const parsed = parseBatchDump(blob.bytes);
      if (!parsed.ok || findLeaf(parsed.value, query.inputHash, query.outputHash) < 0) continue;
      if (fallback?.batch?.root.toLowerCase() === event.root.toLowerCase()) continue;
      const found = `batch ${event.root} holds the leaf (tx ${event.transactionHash})`;
      const report = await auditBatchEvent(ctx, subject, event, found, notes, target(event.root));
      if (report.verified) return report;
      fallback ??= report;
    }
  }
  if (fallback) return fallback;
  if (individual) return auditSettlement(ctx, subject, individual, notes);

  const missing = unreadable.length
    ? `; ${unreadable.length} batch dump(s) could not be read, so the inference may be in one of them: ${unreadable.slice(0, 5).join("; ")}`
    : "";
  const why = `no Settlement event and none of the ${searched} readable batch dumps of relay ${ctx.relay} since block ${ctx.fromBlock} holds this inference${missing}`;
  return anchorNotFound(ctx, subject, why, notes);
}

/**
 * Finds records by input hash (and output hash) or record id in the relay's batches and individual
 * settlements; verifies nothing. Every event is read from the relay's own address.
 */
export async function locate(ctx: AuditContext, q: LocateQuery): Promise<Located[]> {
  const input = q.inputHash?.toLowerCase();
  const output = q.outputHash?.toLowerCase();
  const root = q.root?.toLowerCase();
  const batches: readonly SearchBatch[] = q.batches
    ? q.batches.filter((b) => root === undefined || b.root.toLowerCase() === root)
    : q.root
      ? (await relayBatchEventsForRoot(ctx.chain, ctx.relay, q.root, ctx.fromBlock)).filter((e) => isAddressEqual(e.emitter, ctx.relay))
      : (await relayBatchEvents(ctx.chain, ctx.relay, ctx.fromBlock)).reverse();
  const dumps = q.dumps ?? (async (blobId: string) => {
    const blob = await ctx.getBlob(blobId);
    return blob.ok ? searchableDump(blob.bytes) : undefined;
  });
  const found: Located[] = [];
  await mapLimit(batches.slice(0, q.maxBatches ?? 500), SEARCH_WIDTH, async (batch) => {
    const dump = await dumps(batch.blobId);
    if (!dump) return;
    dump.leaves.forEach((leaf, index) => {
      const recordId = dump.recordIds[index];
      const matches =
        (q.recordId !== undefined && recordId?.toLowerCase() === q.recordId.toLowerCase()) ||
        (input !== undefined && leaf.inputHash === input && (output === undefined || leaf.outputHash === output));
      if (!matches) return;
      found.push({
        kind: "batch",
        root: batch.root,
        blobId: batch.blobId,
        transactionHash: batch.transactionHash,
        blockNumber: batch.blockNumber.toString(),
        batchSize: batch.batchSize.toString(),
        index,
        recordId,
        leaf: { ...leaf, timestamp: leaf.timestamp.toString() },
        proof: proofFromTree(dump.tree, dump.treeIndices[index]!),
      });
    });
  });
  if (input && !q.root && q.settlements !== false) {
    for (const e of await settlementEvents(ctx.chain, ctx.relay, input as Hex, output as Hex | undefined, ctx.fromBlock)) {
      if (!isAddressEqual(e.emitter, ctx.relay)) continue;
      found.push({ kind: "single", event: e.kind, inputHash: e.inputHash, outputHash: e.outputHash, transactionHash: e.transactionHash, blockNumber: e.blockNumber.toString() });
    }
  }
  return found;
}
