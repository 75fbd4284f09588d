/** The explorer's search: the facilitator's claim about a hash, then what the cached index and dumps hold. */
import type { Hex } from "viem";
import type { Auditor, Located } from "@facilitator/auditor";
import type { IndexSnapshot } from "./explorer-batches.ts";
import type { DumpCache } from "./explorer-dumps.ts";

/**
 * What the facilitator's own records say about a record id or input hash: a claim the page checks.
 * The inference service's `RecordView` (`GET /inference/settlements/:id`) fits as it is.
 */
export interface ExplorerLookup {
  recordId?: string;
  /** RecordView's name for `recordId`. */
  id?: string;
  /** RecordView's lane: "settle-batch" is a batch record, the others are single. */
  settlementType?: string;
  /** queued | batched | anchored | failed, or whatever the facilitator calls it. */
  status?: string;
  kind?: "batch" | "single";
  inputHash?: Hex;
  outputHash?: Hex;
  root?: Hex;
  proof?: Hex[];
  transactionHash?: Hex;
  walrusBlobId?: string;
}

export type SearchResult =
  | ({ source: "facilitator" | "chain"; kind: "batch"; recordId?: string; status?: string; inputHash?: Hex; outputHash?: Hex; root: Hex; proof: Hex[]; transactionHash?: Hex; blobId?: string } & {
      leaf?: Extract<Located, { kind: "batch" }>["leaf"];
    })
  | { source: "facilitator" | "chain"; kind: "single"; recordId?: string; status?: string; inputHash: Hex; outputHash: Hex; transactionHash: Hex }
  | { source: "facilitator"; kind: "pending"; recordId?: string; status?: string; inputHash?: Hex; outputHash?: Hex };

/**
 * A search in what the index holds (the newest batches and individual settlements) and in their
 * dumps, through the cache: it reads nothing from the chain. The facilitator's claim about `q`, if
 * any, comes first; its batch's dump is the one the relay's event names, or the claim's own blob id
 * for a batch older than the index keeps.
 */
export async function search(auditor: Auditor, statusLookup: ((query: string) => Promise<ExplorerLookup | undefined>) | undefined, q: Hex, held: IndexSnapshot, dumps: DumpCache): Promise<SearchResult[]> {
  const results: SearchResult[] = [];
  const claim = normaliseClaim(statusLookup ? await statusLookup(q).catch(() => undefined) : undefined);
  if (claim?.root) {
    // The facilitator's proof is shown as it was handed out; the leaf's fields come from the dump.
    const root = claim.root.toLowerCase();
    const anchored = held.batches.find((b) => b.root.toLowerCase() === root);
    const batch = anchored ?? (claim.walrusBlobId ? { root: claim.root, blobId: claim.walrusBlobId, transactionHash: ZERO_HASH, blockNumber: "0", batchSize: "0" } : undefined);
    const inBatch = batch ? await auditor.locate({ batches: [batch], dumps: dumps.get, settlements: false, inputHash: claim.inputHash ?? q, recordId: claim.recordId ?? q }) : [];
    const match = inBatch.find((l): l is Extract<Located, { kind: "batch" }> => l.kind === "batch" && (!claim.outputHash || l.leaf.outputHash === claim.outputHash.toLowerCase()));
    results.push({
      source: "facilitator",
      kind: "batch",
      recordId: claim.recordId ?? match?.recordId,
      status: claim.status,
      inputHash: claim.inputHash ?? match?.leaf.inputHash,
      outputHash: claim.outputHash ?? match?.leaf.outputHash,
      root: claim.root,
      proof: claim.proof ?? [],
      transactionHash: claim.transactionHash ?? (anchored ? match?.transactionHash : undefined),
      blobId: claim.walrusBlobId ?? match?.blobId,
      leaf: match?.leaf,
    });
  } else if (claim?.kind === "single" && claim.transactionHash && claim.inputHash && claim.outputHash) {
    results.push({ source: "facilitator", kind: "single", recordId: claim.recordId, status: claim.status, inputHash: claim.inputHash, outputHash: claim.outputHash, transactionHash: claim.transactionHash });
  } else if (claim) {
    results.push({ source: "facilitator", kind: "pending", recordId: claim.recordId, status: claim.status, inputHash: claim.inputHash, outputHash: claim.outputHash });
  }

  for (const found of await auditor.locate({ inputHash: q, recordId: q, batches: held.batches, dumps: dumps.get, settlements: false })) {
    if (found.kind !== "batch") continue;
    const duplicate = results.some((r) => r.kind === "batch" && r.root.toLowerCase() === found.root.toLowerCase() && r.leaf?.inputHash === found.leaf.inputHash && r.proof.join() === found.proof.join());
    if (duplicate) continue;
    results.push({
      source: "chain",
      kind: "batch",
      recordId: found.recordId,
      inputHash: found.leaf.inputHash,
      outputHash: found.leaf.outputHash,
      root: found.root,
      proof: found.proof,
      transactionHash: found.transactionHash,
      blobId: found.blobId,
      leaf: found.leaf,
    });
  }
  const input = q.toLowerCase();
  for (const single of held.singles) {
    if (single.inputHash.toLowerCase() !== input) continue;
    results.push({ source: "chain", kind: "single", inputHash: single.inputHash, outputHash: single.outputHash, transactionHash: single.transactionHash });
  }
  return results;
}

const ZERO_HASH: Hex = `0x${"0".repeat(64)}`;

function normaliseClaim(claim: ExplorerLookup | undefined): ExplorerLookup | undefined {
  if (!claim) return undefined;
  const kind = claim.kind ?? (claim.settlementType === undefined ? undefined : claim.settlementType === "settle-batch" ? "batch" : "single");
  return { ...claim, recordId: claim.recordId ?? claim.id, kind };
}

