/**
 * The explorer's batch dumps, read from the Walrus aggregator once and kept parsed (leaves, record
 * ids, rebuilt tree) by blob id: a blob's content never changes under its id, so a search that meets
 * a batch again reads nothing. Concurrent searches share one fetch of a dump; a dump that cannot be
 * read is not asked for again before `retryMs`; what is kept is bounded in entries and in bytes, the
 * least recently used going first.
 */
import { fetchBlob, parseBatchDump, rebuildTree, type LocateQuery } from "@facilitator/auditor";

/** A dump ready to search, as the auditor's `locate` reads it. */
export type SearchableDump = NonNullable<Awaited<ReturnType<NonNullable<LocateQuery["dumps"]>>>>;

export interface DumpCacheOptions {
  aggregatorUrl: string;
  /** Dumps kept. */
  maxEntries: number;
  /** Bytes of dump content kept, all dumps together; a larger dump is used once and not kept. */
  maxBytes: number;
  /** A dump that could not be read (or is not a dump) is not asked for again before this long (ms). */
  retryMs: number;
  /** How long one read from the aggregator may take. */
  timeoutMs: number;
  /** Told why a dump could not be used (the error may name the aggregator: scrub it before it is shown). */
  onUnreadable?: (blobId: string, error: string) => void;
}

export class DumpCache {
  /** By blob id, least recently used first (a Map keeps insertion order). */
  private readonly kept = new Map<string, { dump: SearchableDump; bytes: number }>();
  private readonly loading = new Map<string, Promise<SearchableDump | undefined>>();
  /** Blob id -> when it may be asked for again. */
  private readonly unreadable = new Map<string, number>();
  private keptBytes = 0;

  constructor(private readonly opts: DumpCacheOptions) {}

  /** The dump under `blobId`, or undefined when it cannot be read or is not a dump. */
  readonly get = (blobId: string): Promise<SearchableDump | undefined> => {
    const hit = this.kept.get(blobId);
    if (hit) {
      this.kept.delete(blobId);
      this.kept.set(blobId, hit);
      return Promise.resolve(hit.dump);
    }
    const retryAt = this.unreadable.get(blobId);
    if (retryAt !== undefined) {
      if (Date.now() < retryAt) return Promise.resolve(undefined);
      this.unreadable.delete(blobId);
    }
    let loading = this.loading.get(blobId);
    if (!loading) {
      loading = this.load(blobId).finally(() => this.loading.delete(blobId));
      this.loading.set(blobId, loading);
    }
    return loading;
  };

  private async load(blobId: string): Promise<SearchableDump | undefined> {
    const blob = await fetchBlob(this.opts.aggregatorUrl, blobId, this.opts.timeoutMs);
    if (!blob.ok) return this.refuse(blobId, blob.error);
    const parsed = parseBatchDump(blob.bytes);
    if (!parsed.ok) return this.refuse(blobId, `not a batch dump: ${parsed.error}`);
    const rebuilt = rebuildTree(parsed.value.leaves, parsed.value.treeIndices, parsed.value.leafHashes);
    if (!rebuilt.ok) return this.refuse(blobId, "its tree cannot be rebuilt from its leaves");
    const dump: SearchableDump = { leaves: parsed.value.leaves, recordIds: parsed.value.recordIds, treeIndices: rebuilt.treeIndices, tree: rebuilt.tree };
    this.keep(blobId, dump, blob.bytes.length);
    return dump;
  }

  private keep(blobId: string, dump: SearchableDump, bytes: number): void {
    if (bytes > this.opts.maxBytes) return;
    this.kept.set(blobId, { dump, bytes });
    this.keptBytes += bytes;
    for (const [id, entry] of this.kept) {
      if (this.kept.size <= this.opts.maxEntries && this.keptBytes <= this.opts.maxBytes) break;
      this.kept.delete(id);
      this.keptBytes -= entry.bytes;
    }
  }

  private refuse(blobId: string, error: string): undefined {
    const now = Date.now();
    // Forget retry times that have passed once the list grows, so it stays about as small as the cache.
    if (this.unreadable.size >= this.opts.maxEntries) for (const [id, at] of this.unreadable) if (at <= now) this.unreadable.delete(id);
    if (this.unreadable.size < this.opts.maxEntries) this.unreadable.set(blobId, now + this.opts.retryMs);
    this.opts.onUnreadable?.(blobId, error);
    return undefined;
  }
}
