/**
 * The checks of one anchor. A batch event goes through a declared list in which each check names the
 * earlier ones whose output it reads; all others run even after a failure, so a forged batch shows
 * every way it is wrong. An individual settlement event has only its relay record to check.
 */
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { isAddressEqual, type Hex } from "viem";
import { expectedBlobId } from "./blob-id.ts";
import { anchoredAt, shortError, transactionFacts, type BatchEvent, type SettlementEvent } from "./chain.ts";
import { CheckName, fail, notApplicable, pass, type CheckResult } from "./checks.ts";
import type { AuditContext } from "./context.ts";
import { findLeaf, parseBatchDump, type ParsedDump } from "./dump.ts";
import { COMPACT_TREE_FORMAT, leafTuple, leafTypes, type InferenceLeaf } from "./formats.ts";
import { firstDifference, leafHash, processProof, proofFromTree, rebuildTree } from "./merkle.ts";
import { blocking, runChecks, type Check, type Outcome } from "./pipeline.ts";
import { auditReport, type AuditReport, type AuditSubject, type BatchSummary } from "./report.ts";
import { batchTrustChecks, leafTrust, leafTrustChecks, settlementTrustChecks } from "./trust-checks.ts";

/** One inference in a batch: the proof and TEE checks then look at its leaf alone. */
export interface LeafTarget {
  inputHash: Hex;
  outputHash: Hex;
  /** A proof someone handed out for this record (the hint's); it must hold against the anchored root too. */
  claimedProof?: Hex[];
}

/**
 * One batch audit: the search's verdict, then what each check learns. A check reads only fields set
 * by the checks it needs, which the runner has seen through, hence the `!`s.
 */
interface BatchAudit {
  ctx: AuditContext;
  found: Outcome;
  /** Set when found. */
  event?: BatchEvent;
  batch?: BatchSummary;
  target?: LeafTarget;
  /** From fetch-dump. */
  bytes?: Uint8Array;
  /** From recompute-root. */
  dump?: ParsedDump;
  tree?: Hex[];
  /** Each leaf's slot in `tree`. */
  treeIndices?: number[];
  /** From proof, for a target: the leaf's index in the dump. */
  leafAt?: number;
  /** The trust checks' results, judged once for the four of them. */
  trust?: Promise<CheckResult[]>;
}

const batchChecks: readonly Check<BatchAudit>[] = [
  { name: CheckName.findAnchor, run: (a) => a.found },
  { name: CheckName.fetchDump, needs: [CheckName.findAnchor], run: fetchDump },
  { name: CheckName.blobId, needs: [CheckName.fetchDump], run: blobIdMatches },
  { name: CheckName.recomputeRoot, needs: [CheckName.fetchDump], run: recomputeRoot },
  { name: CheckName.rootMatchesEvent, needs: [CheckName.recomputeRoot], run: rootMatchesEvent },
  { name: CheckName.relayEvent, needs: [CheckName.findAnchor], run: (a) => relayEventCheck(a.ctx, a.event!) },
  { name: CheckName.proof, needs: [CheckName.recomputeRoot], run: (a) => (a.target ? leafProof(a, a.target) : allProofs(a)) },
  // After proof, which finds the target's leaf.
  { name: CheckName.teeRegistered, needs: [CheckName.proof], run: (a) => trustCheck(a, CheckName.teeRegistered) },
  { name: CheckName.teeAttestation, needs: [CheckName.proof], run: (a) => trustCheck(a, CheckName.teeAttestation) },
  { name: CheckName.teeMeasurement, needs: [CheckName.proof], run: (a) => trustCheck(a, CheckName.teeMeasurement) },
  { name: CheckName.teeSignature, needs: [CheckName.proof], run: (a) => trustCheck(a, CheckName.teeSignature) },
];

/** Every check of the batch `event` anchors; `found` says how the search found it. */
export async function auditBatchEvent(
  ctx: AuditContext,
  subject: AuditSubject,
  event: BatchEvent,
  found: string,
  notes: readonly string[],
  target?: LeafTarget,
): Promise<AuditReport> {
  const batch: BatchSummary = {
    root: event.root,
    batchSize: event.batchSize.toString(),
    blobId: event.blobId,
    emitter: event.emitter,
    transactionHash: event.transactionHash,
    blockNumber: event.blockNumber.toString(),
  };
  const checks = await runChecks(batchChecks, { ctx, found: pass(CheckName.findAnchor, found), event, batch, target });
  return auditReport(subject, checks, notes, { batch });
}

/** Nothing anchors the subject: every other check is not run. */
export async function anchorNotFound(ctx: AuditContext, subject: AuditSubject, why: string, notes: readonly string[]): Promise<AuditReport> {
  const found = blocking(fail(CheckName.findAnchor, why), "no anchor found");
  return auditReport(subject, await runChecks(batchChecks, { ctx, found }), notes);
}

export async function auditSettlement(ctx: AuditContext, subject: AuditSubject, event: SettlementEvent, notes: readonly string[]): Promise<AuditReport> {
  const individual = "an individual settlement has no batch";
  const checks = [
    pass(CheckName.findAnchor, `${event.kind} event in tx ${event.transactionHash} (block ${event.blockNumber})`),
    notApplicable(CheckName.fetchDump, individual),
    notApplicable(CheckName.blobId, individual),
    notApplicable(CheckName.recomputeRoot, individual),
    notApplicable(CheckName.rootMatchesEvent, individual),
    await relayEventCheck(ctx, event),
    notApplicable(CheckName.proof, "the event itself names the inference's hashes"),
    ...settlementTrustChecks(ctx.trust),
  ];
  const settlement = {
    kind: event.kind,
    emitter: event.emitter,
    transactionHash: event.transactionHash,
    blockNumber: event.blockNumber.toString(),
    metadata: event.metadata,
  };
  return auditReport(subject, checks, notes, { settlement });
}

async function fetchDump(a: BatchAudit): Promise<Outcome> {
  const { blobId } = a.event!;
  const blob = await a.ctx.getBlob(blobId);
  if (!blob.ok) return blocking(fail(CheckName.fetchDump, blob.error), "no dump");
  a.bytes = blob.bytes;
  return pass(CheckName.fetchDump, `${blob.bytes.length} bytes for blob ${blobId}`);
}

async function blobIdMatches({ ctx, event, bytes }: BatchAudit): Promise<CheckResult> {
  if (ctx.blobIdCheck === "none") return notApplicable(CheckName.blobId, "not checked (blob id check disabled)");
  const { blobId } = event!;
  const expected = await expectedBlobId(bytes!, ctx.blobIdCheck);
  const scheme = ctx.blobIdCheck === "walrus" ? "Walrus's encoding" : "the local service's scheme";
  return expected === blobId
    ? pass(CheckName.blobId, `content hashes to ${blobId} under ${scheme}`)
    : fail(CheckName.blobId, `content hashes to ${expected} under ${scheme}, not to the anchored blob id ${blobId}`);
}

/** Rebuilds the tree from the leaves; a tree that disagrees with the dump's own still serves the later checks. */
function recomputeRoot(a: BatchAudit): Outcome {
  const parsed = parseBatchDump(a.bytes!);
  if (!parsed.ok) return blocking(fail(CheckName.recomputeRoot, parsed.error), "the dump cannot be read");
  const { leaves, treeIndices, dump } = parsed.value;
  a.batch!.leafCount = leaves.length;
  const rebuilt = rebuildTree(leaves, treeIndices, parsed.value.leafHashes);
  if (!rebuilt.ok) return blocking(fail(CheckName.recomputeRoot, rebuilt.error), "no tree");
  a.dump = parsed.value;
  a.tree = rebuilt.tree;
  a.treeIndices = rebuilt.treeIndices;
  // A compact dump stores no nodes to disagree with: its tree is only ever the rebuilt one.
  if (dump.tree.format === COMPACT_TREE_FORMAT) return pass(CheckName.recomputeRoot, `root ${rebuilt.root} from ${leaves.length} leaves (compact dump: every node rebuilt)`);
  const differs = firstDifference(dump.tree.tree, rebuilt.tree);
  return differs < 0
    ? pass(CheckName.recomputeRoot, `root ${rebuilt.root} from ${leaves.length} leaves`)
    : fail(
        CheckName.recomputeRoot,
        `the dump's own tree disagrees with its leaves at node ${differs} (dump root ${dump.tree.tree[0] ?? "none"}, recomputed ${rebuilt.root}): a leaf was changed`,
      );
}

function rootMatchesEvent({ event, dump, tree }: BatchAudit): CheckResult {
  const { root, batchSize } = event!;
  const leaves = dump!.leaves.length;
  const problems: string[] = [];
  if (tree![0] !== root.toLowerCase()) problems.push(`recomputed root ${tree![0]} is not the event's root ${root}`);
  if (BigInt(leaves) !== batchSize) problems.push(`the dump has ${leaves} leaves, the event says ${batchSize}`);
  return problems.length ? fail(CheckName.rootMatchesEvent, problems.join("; ")) : pass(CheckName.rootMatchesEvent, `${root}, ${leaves} leaves`);
}

/** Emitter is the configured relay, the transaction succeeded and (for batches) the relay recorded the root. */
async function relayEventCheck(ctx: AuditContext, event: BatchEvent | SettlementEvent): Promise<CheckResult> {
  const problems: string[] = [];
  const fromRelay = isAddressEqual(event.emitter, ctx.relay);
  if (!fromRelay) problems.push(`emitted by ${event.emitter}, not the configured relay ${ctx.relay}`);
  try {
    const tx = await transactionFacts(ctx.chain, event);
    if (tx.status !== "success") problems.push(`transaction ${event.transactionHash} ${tx.status === "missing" ? "has no receipt" : "reverted"}`);
    else if (!tx.logPresent) problems.push(`the receipt of ${event.transactionHash} does not hold the event`);
    if ("root" in event) {
      const block = await anchoredAt(ctx.chain, ctx.relay, event.root);
      if (block === 0n) problems.push(`the relay's anchoredAt(${event.root}) is 0: the relay never anchored this root`);
      else if (fromRelay && block !== event.blockNumber) problems.push(`anchoredAt says block ${block}, the event is in block ${event.blockNumber}`);
    }
  } catch (e) {
    problems.push(`the chain could not be read: ${shortError(e)}`);
  }
  if (problems.length) return fail(CheckName.relayEvent, problems.join("; "));
  const anchored = "root" in event ? `, anchoredAt = block ${event.blockNumber}` : "";
  return pass(CheckName.relayEvent, `relay ${ctx.relay}, tx ${event.transactionHash} succeeded${anchored}`);
}

/** The target's leaf and its path in the rebuilt tree, which any proof handed out must agree with. */
function leafProof(a: BatchAudit, target: LeafTarget): Outcome {
  const { root } = a.event!;
  const { leaves, recordIds } = a.dump!;
  const treeIndices = a.treeIndices!;
  const at = findLeaf(a.dump!, target.inputHash, target.outputHash);
  if (at < 0) return blocking(fail(CheckName.proof, `the dump of batch ${root} holds no leaf for this inference`), "no leaf");
  a.leafAt = at;
  const leaf = leaves[at]!;
  const hash = leafHash(leaf);
  const proof = proofFromTree(a.tree!, treeIndices[at]!);
  a.batch!.leaf = {
    index: at,
    treeIndex: treeIndices[at]!,
    recordId: recordIds[at],
    version: leaf.version,
    teeId: leaf.teeId,
    inputHash: leaf.inputHash,
    outputHash: leaf.outputHash,
    timestamp: leaf.timestamp.toString(),
    ...(leaf.version === 2 ? { settlementType: leaf.settlementType, metadataHash: leaf.metadataHash } : {}),
    teeSignature: leaf.teeSignature,
    leafHash: hash,
    proof,
  };
  const reached = processProof(hash, proof);
  // A second opinion from OpenZeppelin's own implementation of the same rule.
  const oz = StandardMerkleTree.verify(root, [...leafTypes(leaf.version)], ozValue(leaf), proof);
  if (reached !== root.toLowerCase() || !oz) return fail(CheckName.proof, `the leaf's path in the dump leads to ${reached}, not to the anchored root ${root}`);
  const claimed = target.claimedProof;
  if (claimed) {
    const claimedRoot = processProof(hash, claimed);
    if (claimedRoot !== root.toLowerCase()) {
      return fail(CheckName.proof, `the proof the facilitator handed out leads to ${claimedRoot}, not to the anchored root ${root} (the dump's own path does hold)`);
    }
  }
  return pass(CheckName.proof, `${proof.length}-step proof from leaf ${hash} reaches ${root}${claimed ? "; the facilitator's proof agrees" : ""}`);
}

/** Paths walked one by one (and by OpenZeppelin's verifier) in a batch check; a batch this small has every path walked. */
export const WALKED_PATHS = 64;

/**
 * Every leaf's path is made of nodes rebuilt from the leaves themselves, so each leads to the rebuilt
 * root: all hold exactly when that root is the anchored one. Walking n paths would cost n log n hashes
 * (about a second at 65,536 leaves), so a spread of them is walked, each also by OpenZeppelin's verifier
 * as a second opinion on the arithmetic.
 */
function allProofs({ event, dump, tree, treeIndices }: BatchAudit): CheckResult {
  const { root } = event!;
  const { leaves } = dump!;
  if (tree![0] !== root.toLowerCase()) return fail(CheckName.proof, `no leaf's path reaches the anchored root ${root}: the leaves rebuild to ${tree![0]}`);
  const walked = spread(leaves.length, WALKED_PATHS);
  const proofOf = (i: number) => proofFromTree(tree!, treeIndices![i]!);
  const bad = walked.find((i) => processProof(leafHash(leaves[i]!), proofOf(i)) !== root.toLowerCase());
  if (bad !== undefined) return fail(CheckName.proof, `leaf #${bad}'s path does not reach the anchored root ${root}`);
  const oz = walked.every((i) => StandardMerkleTree.verify(root, [...leafTypes(leaves[i]!.version)], ozValue(leaves[i]!), proofOf(i)));
  if (!oz) return fail(CheckName.proof, "OpenZeppelin's verifier rejects a leaf the auditor accepted");
  const how = walked.length < leaves.length ? ` (every path is in the tree rebuilt from the leaves; ${walked.length} walked, also by OpenZeppelin's verifier)` : "";
  return pass(CheckName.proof, `all ${leaves.length} leaves prove against ${root}${how}`);
}

/** Up to `k` indices spread evenly over 0..n-1, first and last included. */
export function spread(n: number, k: number): number[] {
  if (n <= k) return Array.from({ length: n }, (_, i) => i);
  return Array.from({ length: k }, (_, j) => Math.round((j * (n - 1)) / (k - 1)));
}

/** One of the four trust checks; the leaf (or every leaf) is judged once for all four. */
async function trustCheck(a: BatchAudit, name: CheckName): Promise<CheckResult> {
  a.trust ??= (async () => {
    const block = a.event!.blockNumber;
    if (a.target) return leafTrustChecks(await leafTrust(a.ctx, a.dump!.leaves[a.leafAt!]!, block));
    return batchTrustChecks(await Promise.all(a.dump!.leaves.map((l) => leafTrust(a.ctx, l, block))));
  })();
  return (await a.trust).find((c) => c.name === name)!;
}

function ozValue(leaf: InferenceLeaf): string[] {
  return leafTuple(leaf).map((v) => (typeof v === "bigint" ? v.toString() : (v as string)));
}
