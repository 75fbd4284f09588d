/**
 * The explorer's list of the relay's batches, kept in memory and brought up to date with the new
 * blocks only. Anonymous page loads never scan the chain themselves: whatever their number, at most
 * one refresh runs at a time and at most one starts per `refreshMs`; everyone else is answered from
 * what the last refresh found.
 *
 * Events deeper than `confirmations` blocks are final and kept; the ones above are read again on
 * every refresh, so a reorganised tip replaces them instead of leaving a batch that no longer exists.
 */
import { createPublicClient, http, parseAbiItem, type Address, type Hex, type PublicClient } from "viem";
import { blobIdFromBytes, type BatchListing } from "@facilitator/auditor";

const BATCH_EVENT = parseAbiItem("event BatchSettlement(bytes32 indexed merkleRoot, uint256 batchSize, bytes walrusBlobId)");

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
  /** Newest batches kept (the largest page the route serves). */
  keep: number;
  /** How long a request waits for a running refresh before it is answered from the cache (or told to come back). */
  waitMs: number;
  /** How long one RPC call may take. */
  rpcTimeoutMs: number;
}

/** No listing has been built yet and the first one is still being read. */
export class BatchIndexWarming extends Error {}

type Entry = Omit<BatchListing, "timestamp"> & { blockHash: Hex };

export class RelayBatchIndex {
  private readonly client: PublicClient;
  /** Final events, oldest first, at most `keep`. */
  private stable: Entry[] = [];
  /** Events above the final depth, as the last refresh saw them. */
  private tentative: Entry[] = [];
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
    if (!this.running && Date.now() - this.lastStart >= this.opts.refreshMs) {
      this.lastStart = Date.now();
      this.running = this.refresh()
        .then(() => {
          this.ready = true;
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
    const entries = [...this.stable, ...this.tentative].reverse().slice(0, limit);
    return Promise.all(entries.map(async ({ blockHash, ...e }) => ({ ...e, timestamp: await this.timeOf(blockHash) })));
  }

  private async refresh(): Promise<void> {
    if (!this.chainChecked) {
      const id = await this.client.getChainId();
      if (id !== this.opts.chainId) throw new Error(`the RPC serves chain ${id}, not the relay's chain ${this.opts.chainId}`);
      this.chainChecked = true;
    }
    const head = await this.client.getBlockNumber();
    const finalTo = head - this.opts.confirmations;
    const tentative: Entry[] = [];
    for (let start = this.stableTo + 1n; start <= head; start += this.opts.scanBlockRange) {
      const end = start + this.opts.scanBlockRange - 1n < head ? start + this.opts.scanBlockRange - 1n : head;
      const logs = await this.client.getLogs({ address: this.opts.relay, event: BATCH_EVENT, fromBlock: start, toBlock: end, strict: true });
      const entries = logs.map(toEntry);
      // Progress is kept chunk by chunk: a refresh cut short resumes where it stopped, not from the start.
      this.stable.push(...entries.filter((e) => BigInt(e.blockNumber) <= finalTo));
      tentative.push(...entries.filter((e) => BigInt(e.blockNumber) > finalTo));
      if (this.stable.length > this.opts.keep) this.stable.splice(0, this.stable.length - this.opts.keep);
      const committed = end < finalTo ? end : finalTo;
      if (committed > this.stableTo) this.stableTo = committed;
    }
    this.tentative = tentative;
    // Forget block times nothing lists any more.
    const listed = new Set([...this.stable, ...this.tentative].map((e) => e.blockHash));
    for (const hash of this.times.keys()) if (!listed.has(hash)) this.times.delete(hash);
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
