/**
 * The auditor: proves an inference (or a whole batch) was anchored, from the chain and the blob store
 * alone, against one configuration of its own.
 */
import type { Hex } from "viem";
import { anchorNotFound, auditBatchEvent } from "./anchor-checks.ts";
import { batchEventsForRoot, connectChain, relayBatchEvents, type ChainReader } from "./chain.ts";
import { firstFailure } from "./checks.ts";
import { auditContext, type AuditConfig, type AuditContext } from "./context.ts";
import { mapLimit } from "./limit.ts";
import { auditInference, locate, type InferenceQuery, type Located, type LocateQuery } from "./locate.ts";
import type { AuditReport, BatchListing, ScanProgress, ScanReport } from "./report.ts";

export interface ScanOptions {
  fromBlock?: bigint;
  toBlock?: bigint;
  onProgress?: (p: ScanProgress) => void;
  /** Batches audited at once (default 4). */
  concurrency?: number;
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
  const ctx = () => auditContext(config, chain);
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

async function auditRoot(ctx: AuditContext, root: Hex): Promise<AuditReport> {
  const subject = { kind: "batch" as const, root };
  const [event] = await batchEventsForRoot(ctx.chain, ctx.relay, root, ctx.fromBlock);
  if (!event) return anchorNotFound(ctx, subject, `no BatchSettlement event carries root ${root} since block ${ctx.fromBlock}`, []);
  return auditBatchEvent(ctx, subject, event, `BatchSettlement in tx ${event.transactionHash} (block ${event.blockNumber})`, []);
}

async function scanBatches(ctx: AuditContext, opts: ScanOptions): Promise<ScanReport> {
  const fromBlock = opts.fromBlock ?? ctx.fromBlock;
  const toBlock = opts.toBlock ?? (await ctx.chain.client.getBlockNumber());
  const events = await relayBatchEvents(ctx.chain, ctx.relay, fromBlock, toBlock);
  let done = 0;
  const batches = await mapLimit(events, opts.concurrency ?? 4, async (event) => {
    const found = `BatchSettlement in tx ${event.transactionHash} (block ${event.blockNumber})`;
    const report = await auditBatchEvent(ctx, { kind: "batch", root: event.root }, event, found, []);
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

async function listRelayBatches(ctx: AuditContext, opts: { limit?: number; fromBlock?: bigint }): Promise<BatchListing[]> {
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
