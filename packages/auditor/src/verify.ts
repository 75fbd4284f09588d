/**
 * The audit: prove an inference (or a whole batch) was anchored, from the chain and the blob store
 * alone. Every check runs when its inputs exist, so a forged batch shows every way it is wrong;
 * the first failure names the verdict.
 */
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { getAddress, isAddressEqual, type Address, type Hex } from "viem";
import { blobCache, type BlobFetch } from "./aggregator.ts";
import { expectedBlobId, type BlobIdCheck } from "./blob-id.ts";
import {
  anchoredAt,
  batchEventsForRoot,
  connectChain,
  relayBatchEvents,
  settlementEvents,
  shortError,
  transactionFacts,
  type BatchEvent,
  type ChainReader,
  type SettlementEvent,
} from "./chain.ts";
import { CheckName, fail, firstFailure, isVerified, notApplicable, notRun, pass, type CheckResult } from "./checks.ts";
import { findLeaf, parseBatchDump, type ParsedDump } from "./dump.ts";
import { leafTypes, type InferenceLeaf, type TeeKeys } from "./formats.ts";
import { fetchHint, type SettlementHint } from "./hint.ts";
import { mapLimit } from "./limit.ts";
import { firstDifference, leafHash, processProof, proofFromTree, rebuildTree } from "./merkle.ts";
import { checkTeeSignature, describeTeeVerdict } from "./tee.ts";

export interface AuditConfig {
  rpcUrl: string;
  /** When given, the RPC must serve this chain. */
  chainId?: number;
  /** The SettlementRelay the auditor trusts (from its own configuration, never from the facilitator). */
  relayAddress: Address;
  /** A Walrus aggregator (`GET {aggregatorUrl}/v1/blobs/{blobId}`). */
  aggregatorUrl: string;
  /** teeId (bytes32) -> address of the TEE's key. */
  teeKeys?: TeeKeys;
  /** How to check a dump against its blob id: real Walrus ids, the local service's scheme, or not at all. Default "walrus". */
  blobIdCheck?: BlobIdCheck;
  /** First block to search for events (default 0). */
  fromBlock?: bigint;
  /** Largest eth_getLogs block range (default 50,000). */
  maxBlockRange?: bigint;
}

export interface InferenceQuery {
  inputHash: Hex;
  outputHash: Hex;
  /** The facilitator's proof API for this record (`.../inference/settlements/:id`): a hint, never evidence. */
  hintUrl?: string;
  /** A hint already in hand (same meaning as `hintUrl`). */
  hint?: SettlementHint;
}

export interface LeafSummary {
  /** Position in the dump's values (OpenZeppelin's value index). */
  index: number;
  treeIndex: number;
  recordId?: string;
  /** Leaf encoding version (from the dump's format). */
  version: 1 | 2;
  teeId: Hex;
  inputHash: Hex;
  outputHash: Hex;
  timestamp: string;
  /** v2 leaves only. */
  settlementType?: string;
  metadataHash?: Hex;
  teeSignature: Hex;
  leafHash: Hex;
  proof: Hex[];
}

export interface BatchSummary {
  root: Hex;
  batchSize: string;
  blobId: string;
  emitter: Address;
  transactionHash: Hex;
  blockNumber: string;
  /** Leaves in the dump (when it could be read). */
  leafCount?: number;
  /** The audited inference's leaf, for an inference audit. */
  leaf?: LeafSummary;
}

export interface SettlementSummary {
  kind: SettlementEvent["kind"];
  emitter: Address;
  transactionHash: Hex;
  blockNumber: string;
  metadata?: SettlementEvent["metadata"];
}

export interface AuditReport {
  verified: boolean;
  subject: { kind: "inference"; inputHash: Hex; outputHash: Hex } | { kind: "batch"; root: Hex };
  /** The first failing check, when not verified. */
  failedCheck?: CheckName;
  checks: CheckResult[];
  batch?: BatchSummary;
  settlement?: SettlementSummary;
  /** What the auditor did with the hint, and other remarks. */
  notes: string[];
}

export interface ScanProgress {
  done: number;
  total: number;
  root: Hex;
  verified: boolean;
}

export interface ScanOptions {
  fromBlock?: bigint;
  toBlock?: bigint;
  onProgress?: (p: ScanProgress) => void;
  /** Batches audited at once (default 4). */
  concurrency?: number;
}

export interface ScanReport {
  verified: boolean;
  fromBlock: string;
  toBlock: string;
  total: number;
  verifiedCount: number;
  /** Every batch whose tree cannot be fetched or does not match, with the failing check. */
  failures: { root: Hex; transactionHash: Hex; blobId: string; failedCheck: CheckName; detail: string }[];
  batches: AuditReport[];
}

export interface BatchListing {
  root: Hex;
  batchSize: string;
  blobId: string;
  transactionHash: Hex;
  blockNumber: string;
  /** Unix seconds of the block. */
  timestamp: number;
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
      leaf: { version: 1 | 2; teeId: Hex; inputHash: Hex; outputHash: Hex; timestamp: string; settlementType?: string; metadataHash?: Hex; teeSignature: Hex };
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
}

export interface Auditor {
  /** Finds an inference by input hash (and output hash) or record id in the relay's events and dumps. */
  locate(query: LocateQuery): Promise<Located[]>;
  verifyInference(query: InferenceQuery): Promise<AuditReport>;
  verifyBatch(root: Hex): Promise<AuditReport>;
  scan(opts?: ScanOptions): Promise<ScanReport>;
  /** The relay's batches, newest first (for listings; nothing here is verified). */
  listBatches(opts?: { limit?: number; fromBlock?: bigint }): Promise<BatchListing[]>;
  chain: ChainReader;
}

/** Connects once (checking the chain id) and audits against one configuration. */
export async function createAuditor(config: AuditConfig): Promise<Auditor> {
  const chain = await connectChain(config);
  // Each call reads blobs afresh (cached only within the call): a long-lived auditor must see a
  // blob that was removed or replaced since its last audit.
  const ctx = (): Ctx => ({
    chain,
    relay: getAddress(config.relayAddress),
    getBlob: blobCache(config.aggregatorUrl),
    blobIdCheck: config.blobIdCheck ?? "walrus",
    teeKeys: config.teeKeys ?? {},
    fromBlock: config.fromBlock ?? 0n,
  });
  return {
    chain,
    verifyInference: (query) => auditInference(ctx(), query),
    verifyBatch: (root) => auditRoot(ctx(), root),
    scan: (opts) => scanBatches(ctx(), opts ?? {}),
    listBatches: (opts) => listRelayBatches(ctx(), opts ?? {}),
    locate: (query) => locate(ctx(), query),
  };
}

export async function verifyInference(opts: AuditConfig & InferenceQuery): Promise<AuditReport> {
  return (await createAuditor(opts)).verifyInference(opts);
}

export async function verifyBatch(opts: AuditConfig & { root: Hex }): Promise<AuditReport> {
  return (await createAuditor(opts)).verifyBatch(opts.root);
}

export async function scan(opts: AuditConfig & ScanOptions): Promise<ScanReport> {
  return (await createAuditor(opts)).scan(opts);
}

interface Ctx {
  chain: ChainReader;
  relay: Address;
  getBlob: (blobId: string) => Promise<BlobFetch>;
  blobIdCheck: BlobIdCheck;
  teeKeys: TeeKeys;
  fromBlock: bigint;
}

interface LeafTarget {
  inputHash: Hex;
  outputHash: Hex;
  /** A proof someone handed out for this record (the hint's); it must hold against the anchored root too. */
  claimedProof?: Hex[];
}

async function auditInference(ctx: Ctx, query: InferenceQuery): Promise<AuditReport> {
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
    const events = await batchEventsForRoot(ctx.chain, ctx.relay, hint.root, ctx.fromBlock);
    if (events[0]) {
      const find = pass(CheckName.findAnchor, `batch ${events[0].root} (named by the facilitator's hint) in tx ${events[0].transactionHash}`);
      const report = await auditBatchEvent(ctx, events[0], subject, [find], notes, target(events[0].root));
      if (report.verified) return report;
      fallback = report;
      notes.push("the batch the hint names does not verify; searching the relay's other batches");
    } else {
      notes.push(`the hint names root ${hint.root}, which no contract anchored; ignored`);
    }
  }

  // 2. An individual settlement event.
  const individual = await settlementEvents(ctx.chain, ctx.relay, query.inputHash, query.outputHash, ctx.fromBlock);
  if (individual[0] && isAddressEqual(individual[0].emitter, ctx.relay)) return auditSettlement(ctx, individual[0], subject, notes);

  // 3. Every batch of the relay, newest first: the first whose dump holds the leaf and verifies wins.
  const events = (await relayBatchEvents(ctx.chain, ctx.relay, ctx.fromBlock)).reverse();
  const unreadable: string[] = [];
  let searched = 0;
  for (let start = 0; start < events.length; start += 8) {
    const slice = events.slice(start, start + 8);
    const dumps = await mapLimit(slice, 8, (e) => ctx.getBlob(e.blobId));
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
      const find = pass(CheckName.findAnchor, `batch ${event.root} holds the leaf (tx ${event.transactionHash})`);
      const report = await auditBatchEvent(ctx, event, subject, [find], notes, target(event.root));
      if (report.verified) return report;
      fallback ??= report;
    }
  }
  if (fallback) return fallback;
  if (individual[0]) return auditSettlement(ctx, individual[0], subject, notes);

  const missing = unreadable.length
    ? `; ${unreadable.length} batch dump(s) could not be read, so the inference may be in one of them: ${unreadable.slice(0, 5).join("; ")}`
    : "";
  const find = fail(
    CheckName.findAnchor,
    `no Settlement event and none of the ${searched} readable batch dumps of relay ${ctx.relay} since block ${ctx.fromBlock} holds this inference${missing}`,
  );
  return finish(subject, [find, ...rest(CheckName.findAnchor, "no anchor found")], notes);
}

async function auditRoot(ctx: Ctx, root: Hex): Promise<AuditReport> {
  const subject = { kind: "batch" as const, root };
  const events = await batchEventsForRoot(ctx.chain, ctx.relay, root, ctx.fromBlock);
  if (!events[0]) {
    const find = fail(CheckName.findAnchor, `no BatchSettlement event carries root ${root} since block ${ctx.fromBlock}`);
    return finish(subject, [find, ...rest(CheckName.findAnchor, "no anchor found")], []);
  }
  const find = pass(CheckName.findAnchor, `BatchSettlement in tx ${events[0].transactionHash} (block ${events[0].blockNumber})`);
  return auditBatchEvent(ctx, events[0], subject, [find], []);
}

async function scanBatches(ctx: Ctx, opts: ScanOptions): Promise<ScanReport> {
  const fromBlock = opts.fromBlock ?? ctx.fromBlock;
  const toBlock = opts.toBlock ?? (await ctx.chain.client.getBlockNumber());
  const events = await relayBatchEvents(ctx.chain, ctx.relay, fromBlock, toBlock);
  let done = 0;
  const batches = await mapLimit(events, opts.concurrency ?? 4, async (event) => {
    const find = pass(CheckName.findAnchor, `BatchSettlement in tx ${event.transactionHash} (block ${event.blockNumber})`);
    const report = await auditBatchEvent(ctx, event, { kind: "batch", root: event.root }, [find], []);
    opts.onProgress?.({ done: ++done, total: events.length, root: event.root, verified: report.verified });
    return report;
  });
  const failures = batches
    .filter((b) => !b.verified)
    .map((b) => {
      const failed = firstFailure(b.checks)!;
      return { root: b.batch!.root, transactionHash: b.batch!.transactionHash, blobId: b.batch!.blobId, failedCheck: failed.name, detail: failed.detail };
    });
  return {
    verified: failures.length === 0,
    fromBlock: fromBlock.toString(),
    toBlock: toBlock.toString(),
    total: batches.length,
    verifiedCount: batches.length - failures.length,
    failures,
    batches,
  };
}

async function listRelayBatches(ctx: Ctx, opts: { limit?: number; fromBlock?: bigint }): Promise<BatchListing[]> {
  const events = (await relayBatchEvents(ctx.chain, ctx.relay, opts.fromBlock ?? ctx.fromBlock)).reverse().slice(0, opts.limit ?? 50);
  const times = new Map<bigint, Promise<number>>();
  const timeOf = (n: bigint) => {
    if (!times.has(n)) times.set(n, ctx.chain.client.getBlock({ blockNumber: n }).then((b) => Number(b.timestamp)));
    return times.get(n)!;
  };
  return mapLimit(events, 8, async (e) => ({
    root: e.root,
    batchSize: e.batchSize.toString(),
    blobId: e.blobId,
    transactionHash: e.transactionHash,
    blockNumber: e.blockNumber.toString(),
    timestamp: await timeOf(e.blockNumber),
  }));
}

async function locate(ctx: Ctx, q: LocateQuery): Promise<Located[]> {
  const input = q.inputHash?.toLowerCase();
  const output = q.outputHash?.toLowerCase();
  const events = q.root
    ? (await batchEventsForRoot(ctx.chain, ctx.relay, q.root, ctx.fromBlock)).filter((e) => isAddressEqual(e.emitter, ctx.relay))
    : (await relayBatchEvents(ctx.chain, ctx.relay, ctx.fromBlock)).reverse().slice(0, q.maxBatches ?? 500);
  const found: Located[] = [];
  await mapLimit(events, 8, async (event) => {
    const blob = await ctx.getBlob(event.blobId);
    if (!blob.ok) return;
    const parsed = parseBatchDump(blob.bytes);
    if (!parsed.ok) return;
    const rebuilt = rebuildTree(parsed.value.leaves, parsed.value.treeIndices);
    if (!rebuilt.ok) return;
    parsed.value.leaves.forEach((leaf, index) => {
      const recordId = parsed.value.recordIds[index];
      const matches =
        (q.recordId !== undefined && recordId?.toLowerCase() === q.recordId.toLowerCase()) ||
        (input !== undefined && leaf.inputHash === input && (output === undefined || leaf.outputHash === output));
      if (!matches) return;
      found.push({
        kind: "batch",
        root: event.root,
        blobId: event.blobId,
        transactionHash: event.transactionHash,
        blockNumber: event.blockNumber.toString(),
        batchSize: event.batchSize.toString(),
        index,
        recordId,
        leaf: { ...leaf, timestamp: leaf.timestamp.toString() },
        proof: proofFromTree(rebuilt.tree, parsed.value.treeIndices[index]!),
      });
    });
  });
  if (input && !q.root) {
    for (const e of await settlementEvents(ctx.chain, ctx.relay, input as Hex, output as Hex | undefined, ctx.fromBlock)) {
      if (!isAddressEqual(e.emitter, ctx.relay)) continue;
      found.push({ kind: "single", event: e.kind, inputHash: e.inputHash, outputHash: e.outputHash, transactionHash: e.transactionHash, blockNumber: e.blockNumber.toString() });
    }
  }
  return found;
}

/** Every check after `find-anchor` for one batch event; `target` narrows proof and TEE checks to one leaf. */
async function auditBatchEvent(
  ctx: Ctx,
  event: BatchEvent,
  subject: AuditReport["subject"],
  checks: CheckResult[],
  notes: string[],
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
  const relayCheck = relayEventCheck(ctx, event);

  const blob = await ctx.getBlob(event.blobId);
  if (!blob.ok) {
    checks.push(fail(CheckName.fetchDump, blob.error));
    checks.push(notRun(CheckName.blobId, "no dump"), notRun(CheckName.recomputeRoot, "no dump"), notRun(CheckName.rootMatchesEvent, "no dump"));
    checks.push(await relayCheck, notRun(CheckName.proof, "no dump"), notRun(CheckName.teeSignature, "no dump"));
    return finish(subject, checks, notes, { batch });
  }
  checks.push(pass(CheckName.fetchDump, `${blob.bytes.length} bytes for blob ${event.blobId}`));
  checks.push(await blobIdCheck(ctx, blob.bytes, event.blobId));

  const parsed = parseBatchDump(blob.bytes);
  if (!parsed.ok) {
    checks.push(fail(CheckName.recomputeRoot, parsed.error), notRun(CheckName.rootMatchesEvent, "the dump cannot be read"));
    checks.push(await relayCheck, notRun(CheckName.proof, "the dump cannot be read"), notRun(CheckName.teeSignature, "the dump cannot be read"));
    return finish(subject, checks, notes, { batch });
  }
  const { leaves, treeIndices, dump } = parsed.value;
  batch.leafCount = leaves.length;
  const rebuilt = rebuildTree(leaves, treeIndices);
  if (!rebuilt.ok) {
    checks.push(fail(CheckName.recomputeRoot, rebuilt.error), notRun(CheckName.rootMatchesEvent, "no root could be recomputed"));
    checks.push(await relayCheck, notRun(CheckName.proof, "no tree"), notRun(CheckName.teeSignature, "no tree"));
    return finish(subject, checks, notes, { batch });
  }
  const differs = firstDifference(dump.tree.tree, rebuilt.tree);
  checks.push(
    differs < 0
      ? pass(CheckName.recomputeRoot, `root ${rebuilt.root} from ${leaves.length} leaves`)
      : fail(
          CheckName.recomputeRoot,
          `the dump's own tree disagrees with its leaves at node ${differs} (dump root ${dump.tree.tree[0] ?? "none"}, recomputed ${rebuilt.root}): a leaf was changed`,
        ),
  );

  const rootProblems: string[] = [];
  if (rebuilt.root !== event.root.toLowerCase()) rootProblems.push(`recomputed root ${rebuilt.root} is not the event's root ${event.root}`);
  if (BigInt(leaves.length) !== event.batchSize) rootProblems.push(`the dump has ${leaves.length} leaves, the event says ${event.batchSize}`);
  checks.push(rootProblems.length ? fail(CheckName.rootMatchesEvent, rootProblems.join("; ")) : pass(CheckName.rootMatchesEvent, `${event.root}, ${leaves.length} leaves`));
  checks.push(await relayCheck);

  if (target) {
    const at = findLeaf(parsed.value, target.inputHash, target.outputHash);
    if (at < 0) {
      checks.push(fail(CheckName.proof, `the dump of batch ${event.root} holds no leaf for this inference`));
      checks.push(notRun(CheckName.teeSignature, "no leaf"));
      return finish(subject, checks, notes, { batch });
    }
    const leaf = leaves[at]!;
    const proof = proofFromTree(rebuilt.tree, treeIndices[at]!);
    batch.leaf = {
      index: at,
      treeIndex: treeIndices[at]!,
      recordId: parsed.value.recordIds[at],
      version: leaf.version,
      teeId: leaf.teeId,
      inputHash: leaf.inputHash,
      outputHash: leaf.outputHash,
      timestamp: leaf.timestamp.toString(),
      ...(leaf.version === 2 ? { settlementType: leaf.settlementType, metadataHash: leaf.metadataHash } : {}),
      teeSignature: leaf.teeSignature,
      leafHash: leafHash(leaf),
      proof,
    };
    checks.push(proofCheck(event.root, leaf, proof, target.claimedProof));
    checks.push(await teeCheck(ctx, leaf));
  } else {
    checks.push(allProofsCheck(event.root, leaves, treeIndices, rebuilt.tree));
    checks.push(await allTeeCheck(ctx, leaves));
  }
  return finish(subject, checks, notes, { batch });
}

async function auditSettlement(ctx: Ctx, event: SettlementEvent, subject: AuditReport["subject"], notes: string[]): Promise<AuditReport> {
  const settlement: SettlementSummary = {
    kind: event.kind,
    emitter: event.emitter,
    transactionHash: event.transactionHash,
    blockNumber: event.blockNumber.toString(),
    metadata: event.metadata,
  };
  const individual = "an individual settlement has no batch";
  const checks = [
    pass(CheckName.findAnchor, `${event.kind} event in tx ${event.transactionHash} (block ${event.blockNumber})`),
    notApplicable(CheckName.fetchDump, individual),
    notApplicable(CheckName.blobId, individual),
    notApplicable(CheckName.recomputeRoot, individual),
    notApplicable(CheckName.rootMatchesEvent, individual),
    await relayEventCheck(ctx, event),
    notApplicable(CheckName.proof, "the event itself names the inference's hashes"),
    notApplicable(CheckName.teeSignature, "individual settlements record no TEE signature"),
  ];
  return finish(subject, checks, notes, { settlement });
}

async function blobIdCheck(ctx: Ctx, bytes: Uint8Array, blobId: string): Promise<CheckResult> {
  if (ctx.blobIdCheck === "none") return notApplicable(CheckName.blobId, "not checked (blob id check disabled)");
  const expected = await expectedBlobId(bytes, ctx.blobIdCheck);
  const scheme = ctx.blobIdCheck === "walrus" ? "Walrus's encoding" : "the local service's scheme";
  return expected === blobId
    ? pass(CheckName.blobId, `content hashes to ${blobId} under ${scheme}`)
    : fail(CheckName.blobId, `content hashes to ${expected} under ${scheme}, not to the anchored blob id ${blobId}`);
}

/** Emitter is the configured relay, the transaction succeeded and (for batches) the relay recorded the root. */
async function relayEventCheck(ctx: Ctx, event: (BatchEvent | SettlementEvent) & { emitter: Address }): Promise<CheckResult> {
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

function proofCheck(root: Hex, leaf: InferenceLeaf, proof: Hex[], claimed?: Hex[]): CheckResult {
  const hash = leafHash(leaf);
  const reached = processProof(hash, proof);
  // A second opinion from OpenZeppelin's own implementation of the same rule.
  const oz = StandardMerkleTree.verify(root, [...leafTypes(leaf.version)], ozValue(leaf), proof);
  if (reached !== root.toLowerCase() || !oz) return fail(CheckName.proof, `the leaf's path in the dump leads to ${reached}, not to the anchored root ${root}`);
  if (claimed) {
    const claimedRoot = processProof(hash, claimed);
    if (claimedRoot !== root.toLowerCase()) {
      return fail(CheckName.proof, `the proof the facilitator handed out leads to ${claimedRoot}, not to the anchored root ${root} (the dump's own path does hold)`);
    }
  }
  return pass(CheckName.proof, `${proof.length}-step proof from leaf ${hash} reaches ${root}${claimed ? "; the facilitator's proof agrees" : ""}`);
}

function allProofsCheck(root: Hex, leaves: InferenceLeaf[], treeIndices: number[], tree: Hex[]): CheckResult {
  const bad = leaves.findIndex((leaf, i) => processProof(leafHash(leaf), proofFromTree(tree, treeIndices[i]!)) !== root.toLowerCase());
  if (bad >= 0) return fail(CheckName.proof, `leaf #${bad}'s path does not reach the anchored root ${root}`);
  const oz = leaves.every((leaf, i) => StandardMerkleTree.verify(root, [...leafTypes(leaf.version)], ozValue(leaf), proofFromTree(tree, treeIndices[i]!)));
  if (!oz) return fail(CheckName.proof, "OpenZeppelin's verifier rejects a leaf the auditor accepted");
  return pass(CheckName.proof, `all ${leaves.length} leaves prove against ${root}`);
}

async function teeCheck(ctx: Ctx, leaf: InferenceLeaf): Promise<CheckResult> {
  const verdict = await checkTeeSignature(leaf, ctx.teeKeys);
  const detail = describeTeeVerdict(verdict, leaf.teeId);
  if (verdict.status === "valid") return pass(CheckName.teeSignature, detail);
  if (verdict.status === "absent") return notApplicable(CheckName.teeSignature, detail);
  return fail(CheckName.teeSignature, detail);
}

async function allTeeCheck(ctx: Ctx, leaves: InferenceLeaf[]): Promise<CheckResult> {
  const verdicts = await Promise.all(leaves.map((l) => checkTeeSignature(l, ctx.teeKeys)));
  const bad = verdicts.map((v, i) => ({ v, i })).filter(({ v }) => v.status !== "valid" && v.status !== "absent");
  const signed = verdicts.filter((v) => v.status === "valid").length;
  if (bad.length) {
    const first = bad.slice(0, 3).map(({ v, i }) => `leaf #${i}: ${describeTeeVerdict(v, leaves[i]!.teeId)}`);
    return fail(CheckName.teeSignature, `${bad.length} of ${leaves.length} leaves fail: ${first.join("; ")}`);
  }
  if (signed === 0) return notApplicable(CheckName.teeSignature, "no leaf carries a TEE signature");
  return pass(CheckName.teeSignature, `${signed} signed leaves verify${signed < leaves.length ? `, ${leaves.length - signed} carry none` : ""}`);
}

function ozValue(leaf: InferenceLeaf): string[] {
  return leaf.version === 2
    ? [leaf.teeId, leaf.inputHash, leaf.outputHash, leaf.timestamp.toString(), leaf.settlementType ?? "", leaf.metadataHash ?? "", leaf.teeSignature]
    : [leaf.teeId, leaf.inputHash, leaf.outputHash, leaf.timestamp.toString(), leaf.teeSignature];
}

function rest(after: CheckName, because: string): CheckResult[] {
  const order = Object.values(CheckName);
  return order.slice(order.indexOf(after) + 1).map((name) => notRun(name, because));
}

function finish(
  subject: AuditReport["subject"],
  checks: CheckResult[],
  notes: string[],
  extra: Pick<AuditReport, "batch" | "settlement"> = {},
): AuditReport {
  const verified = isVerified(checks);
  return { verified, subject, failedCheck: verified ? undefined : firstFailure(checks)?.name, checks, ...extra, notes: [...notes] };
}

export type { ParsedDump };
