/**
 * The explorer's index of the relay's events (its batches and its individual settlements), kept in
 * memory and brought up to date with the new blocks only. Anonymous page loads and searches never
 * scan the chain themselves: whatever their number, at most one refresh runs at a time, at most one
 * starts per `refreshMs`, and one refresh reads at most `maxBlocksPerRefresh` blocks (an index far
 * behind the head catches up over several); everyone else is answered from what the last refresh
 * found. Every eth_getLogs names the relay's address.
 *
 * Events deeper than `confirmations` blocks are final and kept; the ones above are read again on
 * every refresh, so a reorganised tip replaces them instead of leaving a batch that no longer exists.
 */
import { createPublicClient, http, parseAbi, type Address, type Hex, type PublicClient } from "viem";
import { blobIdFromBytes, type BatchListing } from "@facilitator/auditor";

/** The relay's events the index keeps: all three in one eth_getLogs per block range. */
const RELAY_EVENTS = parseAbi([
  "event BatchSettlement(bytes32 indexed merkleRoot, uint256 batchSize, bytes walrusBlobId)",
  "event Settlement(bytes32 indexed inputHash, bytes32 indexed outputHash)",
  "event SettlementWithMetadata(bytes32 indexed inputHash, bytes32 indexed outputHash, string modelInfo, string inputData, string outputData)",
]);

export interface BatchIndexOptions {
  rpcUrl: string;
  chainId: number;
  relay: Address;
  /** First block to read (the relay's deployment block). */
  fromBlock: bigint;
  /** A new refresh starts at most this often (ms). */
  refreshMs: number;
  /** Blocks per eth_getLogs (hosted RPCs refuse wide ranges). */
  scanBlockRange: bigint;
  /** Events at least this deep are final. */
  confirmations: bigint;
  /** Newest batches kept (the largest page the route serves, and what a search reads). */
  keep: number;
  /** Newest individual settlements kept (what a search reads). */
  keepSingles: number;
  /** Most blocks one refresh reads; an index further behind catches up over the next refreshes. */
  maxBlocksPerRefresh: bigint;
  /** How long a request waits for a running refresh before it is answered from the cache (or told to come back). */
  waitMs: number;
  /** How long one RPC call may take. */
  rpcTimeoutMs: number;
}

/** No listing has been built yet and the first one is still being read. */
export class BatchIndexWarming extends Error {}

type Entry = Omit<BatchListing, "timestamp"> & { blockHash: Hex };

/** An individual settlement of the relay (`Settlement` or `SettlementWithMetadata`; the metadata is not kept). */
export interface SingleEntry {
  kind: "Settlement" | "SettlementWithMetadata";
  inputHash: Hex;
  outputHash: Hex;
  transactionHash: Hex;
  blockNumber: string;
}

/** What a search reads: the kept batches and individual settlements, newest first. */
export interface IndexSnapshot {
  batches: Omit<BatchListing, "timestamp">[];
  singles: SingleEntry[];
}

export class RelayBatchIndex {
  private readonly client: PublicClient;
  /** Final batch events, oldest first, at most `keep`. */
  private stable: Entry[] = [];
  /** Batch events above the final depth, as the last refresh saw them. */
  private tentative: Entry[] = [];
  /** Final individual settlements, oldest first, at most `keepSingles`. */
  private stableSingles: SingleEntry[] = [];
  private tentativeSingles: SingleEntry[] = [];
  /** Every block up to this one has been read into `stable`. */
  private stableTo: bigint;
  private chainChecked = false;
  private ready = false;
  private running?: Promise<void>;
  private lastStart = Number.NEGATIVE_INFINITY;
  private lastError?: unknown;
  private readonly times = new Map<Hex, Promise<number>>();

  constructor(private readonly opts: BatchIndexOptions) {
    this.client = createPublicClient({ transport: http(opts.rpcUrl, { retryCount: 0, timeout: opts.rpcTimeoutMs }), cacheTime: 0 }) as PublicClient;
    this.stableTo = opts.fromBlock - 1n;
  }

  /** The newest `limit` batches, newest first. Throws when nothing could be read yet. */
  async newest(limit: number): Promise<BatchListing[]> {
    await this.current();
    const entries = [...this.stable, ...this.tentative].reverse().slice(0, limit);
    return Promise.all(entries.map(async ({ blockHash, ...e }) => ({ ...e, timestamp: await this.timeOf(blockHash) })));
  }

  /** Every batch and individual settlement kept, newest first: what a search reads. Throws like `newest`. */
  async snapshot(): Promise<IndexSnapshot> {
    await this.current();
    return {
      batches: [...this.stable, ...this.tentative].reverse().map(({ blockHash: _, ...e }) => e),
      singles: [...this.stableSingles, ...this.tentativeSingles].reverse(),
    };
  }

  /** Starts a refresh when one is due, waits for a running one up to `waitMs`, and throws when there is no listing yet. */
  private async current(): Promise<void> {
    if (!this.running && Date.now() - this.lastStart >= this.opts.refreshMs) {
      this.lastStart = Date.now();
      this.running = this.refresh()
        .then((caughtUp) => {
          // Ready once a refresh has reached the head; an index still catching up has no listing to show.
          if (caughtUp) this.ready = true;
          this.lastError = undefined;
        })
        .catch((e: unknown) => {
          this.lastError = e;
        })
        .finally(() => {
          this.running = undefined;
        });
    }
    if (this.running) {
      let timer: NodeJS.Timeout | undefined;
      const waited = await Promise.race([
        this.running.then(() => "done" as const),
        new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), this.opts.waitMs))),
      ]);
      clearTimeout(timer);
      if (waited === "timeout" && !this.ready) throw new BatchIndexWarming("the batch list is still being read from the chain");
    }
    // A failed refresh leaves the last good listing in place; with none, the failure is the answer.
    if (!this.ready) throw this.lastError ?? new BatchIndexWarming("the batch list is still being read from the chain");
  }

  /** Reads the blocks after the last final one, at most `maxBlocksPerRefresh` of them; true when it reached the head. */
  private async refresh(): Promise<boolean> {
    if (!this.chainChecked) {
      const id = await this.client.getChainId();
      if (id !== this.opts.chainId) throw new Error(`the RPC serves chain ${id}, not the relay's chain ${this.opts.chainId}`);
      this.chainChecked = true;
    }
    const head = await this.client.getBlockNumber();
    const finalTo = head - this.opts.confirmations;
    const cap = this.stableTo + this.opts.maxBlocksPerRefresh;
    const until = cap < head ? cap : head;
    const tentative: Entry[] = [];
    const tentativeSingles: SingleEntry[] = [];
    const isFinal = (e: { blockNumber: string }) => BigInt(e.blockNumber) <= finalTo;
    for (let start = this.stableTo + 1n; start <= until; start += this.opts.scanBlockRange) {
      const end = start + this.opts.scanBlockRange - 1n < until ? start + this.opts.scanBlockRange - 1n : until;
      const logs = await this.client.getLogs({ address: this.opts.relay, events: RELAY_EVENTS, fromBlock: start, toBlock: end, strict: true });
      const batches: Entry[] = [];
      const singles: SingleEntry[] = [];
      for (const log of logs) {
        if (log.eventName === "BatchSettlement") batches.push(toEntry(log));
        else singles.push({ kind: log.eventName, inputHash: log.args.inputHash, outputHash: log.args.outputHash, transactionHash: log.transactionHash, blockNumber: log.blockNumber.toString() });
      }
      // Progress is kept chunk by chunk: a refresh cut short resumes where it stopped, not from the start.
      this.stable.push(...batches.filter(isFinal));
      tentative.push(...batches.filter((e) => !isFinal(e)));
      this.stableSingles.push(...singles.filter(isFinal));
      tentativeSingles.push(...singles.filter((e) => !isFinal(e)));
      if (this.stable.length > this.opts.keep) this.stable.splice(0, this.stable.length - this.opts.keep);
      if (this.stableSingles.length > this.opts.keepSingles) this.stableSingles.splice(0, this.stableSingles.length - this.opts.keepSingles);
      const committed = end < finalTo ? end : finalTo;
      if (committed > this.stableTo) this.stableTo = committed;
    }
    this.tentative = tentative;
    this.tentativeSingles = tentativeSingles;
    // Forget block times nothing lists any more.
    const listed = new Set([...this.stable, ...this.tentative].map((e) => e.blockHash));
    for (const hash of this.times.keys()) if (!listed.has(hash)) this.times.delete(hash);
    return until >= head;
  }

  /** A block's time, read once per block hash (an entry's block never changes its time). */
  private timeOf(blockHash: Hex): Promise<number> {
    let time = this.times.get(blockHash);
    if (!time) {
      time = this.client.getBlock({ blockHash }).then((b) => Number(b.timestamp));
      time.catch(() => this.times.delete(blockHash));
      this.times.set(blockHash, time);
    }
    return time;
  }
}

function toEntry(log: { args: { merkleRoot: Hex; batchSize: bigint; walrusBlobId: Hex }; blockNumber: bigint; blockHash: Hex; transactionHash: Hex }): Entry {
  return {
    root: log.args.merkleRoot,
    batchSize: log.args.batchSize.toString(),
    blobId: blobIdFromBytes(log.args.walrusBlobId),
    transactionHash: log.transactionHash,
    blockNumber: log.blockNumber.toString(),
    blockHash: log.blockHash,
  };
}
