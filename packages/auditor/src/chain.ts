/** Reading the relay's events and state. The chain (through the auditor's own RPC) is the only evidence. */
import {
  createPublicClient,
  getAddress,
  http,
  isAddressEqual,
  type Address,
  type Hex,
  type PublicClient,
} from "viem";
import { FacilitatorError } from "@facilitator/core";
import { relayAbi } from "./formats.ts";

export interface BatchEvent {
  root: Hex;
  batchSize: bigint;
  /** The blob id as text (the event carries its UTF-8 bytes). */
  blobId: string;
  emitter: Address;
  blockNumber: bigint;
  transactionHash: Hex;
  logIndex: number;
}

export interface SettlementEvent {
  kind: "Settlement" | "SettlementWithMetadata";
  inputHash: Hex;
  outputHash: Hex;
  metadata?: { modelInfo: string; inputData: string; outputData: string };
  emitter: Address;
  blockNumber: bigint;
  transactionHash: Hex;
  logIndex: number;
}

export interface ChainOptions {
  rpcUrl: string;
  /** When given, the RPC must answer this chain id (else AuditConfigError). */
  chainId?: number;
  /** Largest block range per eth_getLogs; public RPCs often refuse wide ranges. */
  maxBlockRange?: bigint;
}

export class AuditConfigError extends FacilitatorError {}

export interface ChainReader {
  client: PublicClient;
  maxBlockRange: bigint;
}

export async function connectChain(opts: ChainOptions): Promise<ChainReader> {
  // cacheTime 0: an audit right after an anchor must see the newest block, not one cached a moment ago.
  const client = createPublicClient({ transport: http(opts.rpcUrl, { retryCount: 1 }), pollingInterval: 50, cacheTime: 0 }) as PublicClient;
  let chainId: number;
  try {
    chainId = await client.getChainId();
  } catch (e) {
    throw new AuditConfigError(`cannot reach the RPC at ${opts.rpcUrl}: ${shortError(e)}`);
  }
  if (opts.chainId !== undefined && chainId !== opts.chainId) {
    throw new AuditConfigError(`the RPC at ${opts.rpcUrl} serves chain ${chainId}, not the configured ${opts.chainId}`);
  }
  return { client, maxBlockRange: opts.maxBlockRange ?? 50_000n };
}

/**
 * Batch events carrying `root` from ANY contract, the relay's first. Looking beyond the relay is
 * what lets the report say "emitted by 0x..., not the relay" instead of only "not found".
 */
export async function batchEventsForRoot(chain: ChainReader, relay: Address, root: Hex, fromBlock = 0n): Promise<BatchEvent[]> {
  const logs = await chunkedLogs(chain, fromBlock, (range) =>
    chain.client.getLogs({ event: relayAbi[2], args: { merkleRoot: root }, ...range, strict: true }),
  );
  return preferRelay(logs.map(toBatchEvent), relay);
}

/** The relay's batch events carrying `root` (none from any other contract; the emitter is still returned for callers to check). */
export async function relayBatchEventsForRoot(chain: ChainReader, relay: Address, root: Hex, fromBlock = 0n): Promise<BatchEvent[]> {
  const logs = await chunkedLogs(chain, fromBlock, (range) =>
    chain.client.getLogs({ address: relay, event: relayAbi[2], args: { merkleRoot: root }, ...range, strict: true }),
  );
  return logs.map(toBatchEvent);
}

/** Every batch the relay anchored since `fromBlock`, oldest first. */
export async function relayBatchEvents(chain: ChainReader, relay: Address, fromBlock = 0n, toBlock?: bigint): Promise<BatchEvent[]> {
  const logs = await chunkedLogs(
    chain,
    fromBlock,
    (range) => chain.client.getLogs({ address: relay, event: relayAbi[2], ...range, strict: true }),
    toBlock,
  );
  return logs.map(toBatchEvent);
}

/**
 * The relay's individual settlement events for one inference. Asked of the relay's address only:
 * anyone can emit `Settlement(inputHash, ...)` from a contract of their own, so a query by topic alone
 * reads every impostor's events too (on a public chain, enough of them to make the node refuse the
 * range, which would stop the audit) and costs the node a search across every contract. The emitter
 * is still returned, and callers still check it: an RPC may answer with logs it was not asked for.
 */
export async function settlementEvents(
  chain: ChainReader,
  relay: Address,
  inputHash: Hex,
  outputHash: Hex | undefined,
  fromBlock = 0n,
): Promise<SettlementEvent[]> {
  const args = outputHash ? { inputHash, outputHash } : { inputHash };
  const [plain, withMetadata] = await Promise.all([
    chunkedLogs(chain, fromBlock, (range) => chain.client.getLogs({ address: relay, event: relayAbi[0], args, ...range, strict: true })),
    chunkedLogs(chain, fromBlock, (range) => chain.client.getLogs({ address: relay, event: relayAbi[1], args, ...range, strict: true })),
  ]);
  const events: SettlementEvent[] = [
    ...plain.map((l) => ({ kind: "Settlement" as const, ...l.args, ...where(l) })),
    ...withMetadata.map((l) => ({
      kind: "SettlementWithMetadata" as const,
      inputHash: l.args.inputHash,
      outputHash: l.args.outputHash,
      metadata: { modelInfo: l.args.modelInfo, inputData: l.args.inputData, outputData: l.args.outputData },
      ...where(l),
    })),
  ];
  return preferRelay(events, relay);
}

export interface TxFacts {
  status: "success" | "reverted" | "missing";
  /** The receipt holds a log at this index from this emitter (guards an RPC answering for another tx). */
  logPresent: boolean;
}

export async function transactionFacts(chain: ChainReader, event: { transactionHash: Hex; logIndex: number; emitter: Address }): Promise<TxFacts> {
  try {
    const receipt = await chain.client.getTransactionReceipt({ hash: event.transactionHash });
    const log = receipt.logs.find((l) => l.logIndex === event.logIndex);
    return { status: receipt.status, logPresent: !!log && isAddressEqual(log.address, event.emitter) };
  } catch {
    return { status: "missing", logPresent: false };
  }
}

/** The block the relay recorded for `root` (0n: never anchored there). */
export async function anchoredAt(chain: ChainReader, relay: Address, root: Hex): Promise<bigint> {
  return chain.client.readContract({ address: relay, abi: relayAbi, functionName: "anchoredAt", args: [root] });
}

export async function blockTime(chain: ChainReader, blockNumber: bigint): Promise<number> {
  const block = await chain.client.getBlock({ blockNumber });
  return Number(block.timestamp);
}

/** The blob id text from the event's bytes (the relay stores the base64url id's UTF-8 bytes). */
export function blobIdFromBytes(bytes: Hex): string {
  const raw = Buffer.from(bytes.slice(2), "hex");
  const text = raw.toString("utf8");
  return /^[A-Za-z0-9_=-]+$/.test(text) ? text : bytes;
}

type Range = { fromBlock: bigint; toBlock: bigint };

async function chunkedLogs<T>(chain: ChainReader, fromBlock: bigint, query: (range: Range) => Promise<T[]>, toBlock?: bigint): Promise<T[]> {
  const last = toBlock ?? (await chain.client.getBlockNumber());
  const out: T[] = [];
  for (let start = fromBlock; start <= last; start += chain.maxBlockRange) {
    const end = start + chain.maxBlockRange - 1n < last ? start + chain.maxBlockRange - 1n : last;
    out.push(...(await query({ fromBlock: start, toBlock: end })));
  }
  return out;
}

interface RawLog {
  address: Address;
  blockNumber: bigint | null;
  transactionHash: Hex | null;
  logIndex: number | null;
}

function where(l: RawLog) {
  return { emitter: getAddress(l.address), blockNumber: l.blockNumber ?? 0n, transactionHash: l.transactionHash!, logIndex: l.logIndex ?? 0 };
}

function toBatchEvent(l: RawLog & { args: { merkleRoot: Hex; batchSize: bigint; walrusBlobId: Hex } }): BatchEvent {
  return { root: l.args.merkleRoot, batchSize: l.args.batchSize, blobId: blobIdFromBytes(l.args.walrusBlobId), ...where(l) };
}

function preferRelay<E extends { emitter: Address }>(events: E[], relay: Address): E[] {
  return [...events.filter((e) => isAddressEqual(e.emitter, relay)), ...events.filter((e) => !isAddressEqual(e.emitter, relay))];
}

export function shortError(e: unknown): string {
  const err = e as { shortMessage?: string; message?: string };
  return (err.shortMessage ?? err.message ?? String(e)).split("\n")[0]!;
}
