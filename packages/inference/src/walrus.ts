/**
 * Walrus over its HTTP API: `PUT {publisher}/v1/blobs?epochs=N[&permanent=true]` stores raw bytes,
 * `GET {aggregator}/v1/blobs/{blobId}` reads them. Transient failures (network errors, 429, 5xx,
 * 504 above all) are retried with exponential backoff; 4xx answers are final.
 */

export interface StoredBlob {
  blobId: string;
  /** `newlyCreated` on first store, `alreadyCertified` when Walrus already held the same content. */
  status: "newlyCreated" | "alreadyCertified";
  endEpoch?: number;
  /** Sui object id of the blob (newlyCreated only). */
  objectId?: string;
}

/** Where batch dumps go. The worker needs only this, so tests and other stores can stand in. */
export interface BlobStore {
  store(content: Uint8Array | string): Promise<StoredBlob>;
  read(blobId: string): Promise<Uint8Array>;
}

export class WalrusError extends Error {
  constructor(
    message: string,
    /** HTTP status, or undefined for a network failure. */
    readonly status: number | undefined,
    /** True when trying again later may succeed. */
    readonly transient: boolean,
  ) {
    super(message);
    this.name = "WalrusError";
  }
}

export interface WalrusClientOptions {
  /** e.g. `https://publisher.example` or, as the old facilitator's WALRUS_PUBLISHER_URL, `.../v1/blobs`. */
  publisherUrl: string;
  aggregatorUrl: string;
  /** Storage epochs ahead (Walrus mainnet allows at most 53, two weeks each). */
  epochs?: number;
  /** Permanent blobs cannot be deleted by their owner before they expire. */
  permanent?: boolean;
  /** Tries per call, including the first. */
  attempts?: number;
  /** First retry delay; doubles each retry, capped at 10 s. */
  backoffMs?: number;
  /** Per-request timeout. */
  timeoutMs?: number;
}

export class WalrusClient implements BlobStore {
  readonly publisherUrl: string;
  readonly aggregatorUrl: string;
  private readonly epochs: number;
  private readonly permanent: boolean;
  private readonly attempts: number;
  private readonly backoffMs: number;
  private readonly timeoutMs: number;

  constructor(opts: WalrusClientOptions) {
    this.publisherUrl = baseUrl(opts.publisherUrl);
    this.aggregatorUrl = baseUrl(opts.aggregatorUrl);
    this.epochs = opts.epochs ?? 53;
    this.permanent = opts.permanent ?? true;
    this.attempts = Math.max(1, opts.attempts ?? 5);
    this.backoffMs = opts.backoffMs ?? 250;
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    if (!Number.isInteger(this.epochs) || this.epochs < 1) throw new Error("Walrus epochs must be a positive integer");
  }

  async store(content: Uint8Array | string): Promise<StoredBlob> {
    const body = typeof content === "string" ? new TextEncoder().encode(content) : content;
    const url = `${this.publisherUrl}/v1/blobs?epochs=${this.epochs}${this.permanent ? "&permanent=true" : ""}`;
    const res = await this.request(url, { method: "PUT", body: body as unknown as BodyInit, headers: { "content-type": "application/octet-stream" } });
    return parseStoreAnswer(await res.json());
  }

  async read(blobId: string): Promise<Uint8Array> {
    if (!/^[A-Za-z0-9_-]+$/.test(blobId)) throw new WalrusError(`malformed blob id ${JSON.stringify(blobId)}`, undefined, false);
    const res = await this.request(`${this.aggregatorUrl}/v1/blobs/${blobId}`, { method: "GET" });
    return new Uint8Array(await res.arrayBuffer());
  }

  private async request(url: string, init: RequestInit): Promise<Response> {
    let last: WalrusError | undefined;
    for (let attempt = 0; attempt < this.attempts; attempt++) {
      if (attempt > 0) await sleep(Math.min(10_000, this.backoffMs * 2 ** (attempt - 1)));
      let res: Response;
      try {
        res = await fetch(url, { ...init, signal: AbortSignal.timeout(this.timeoutMs) });
      } catch (e) {
        last = new WalrusError(`Walrus ${init.method} ${url} failed: ${(e as Error).message}`, undefined, true);
        continue;
      }
      if (res.ok) return res;
      const text = (await res.text().catch(() => "")).slice(0, 300);
      last = new WalrusError(`Walrus ${init.method} ${url} answered ${res.status}: ${text}`, res.status, isTransient(res.status));
      if (!last.transient) throw last;
    }
    throw last!;
  }
}

const isTransient = (status: number) => status === 408 || status === 429 || status >= 500;

/** Parses the publisher's answer: `{newlyCreated: {blobObject}}` or `{alreadyCertified: {blobId}}`. */
export function parseStoreAnswer(json: unknown): StoredBlob {
  const j = json as {
    newlyCreated?: { blobObject?: { blobId?: unknown; id?: unknown; storage?: { endEpoch?: unknown } } };
    alreadyCertified?: { blobId?: unknown; endEpoch?: unknown };
  };
  const created = j?.newlyCreated?.blobObject;
  if (created && typeof created.blobId === "string") {
    return {
      blobId: created.blobId,
      status: "newlyCreated",
      endEpoch: typeof created.storage?.endEpoch === "number" ? created.storage.endEpoch : undefined,
      objectId: typeof created.id === "string" ? created.id : undefined,
    };
  }
  const certified = j?.alreadyCertified;
  if (certified && typeof certified.blobId === "string") {
    return {
      blobId: certified.blobId,
      status: "alreadyCertified",
      endEpoch: typeof certified.endEpoch === "number" ? certified.endEpoch : undefined,
    };
  }
  throw new WalrusError(`unexpected Walrus publisher answer: ${JSON.stringify(json).slice(0, 300)}`, 200, false);
}

/** Accepts both `https://host` and `https://host/v1/blobs` (the old facilitator's spelling). */
function baseUrl(url: string): string {
  return url.replace(/\/+$/, "").replace(/\/v1\/blobs$/, "");
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
