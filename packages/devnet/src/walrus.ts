/**
 * A local stand-in for Walrus: a publisher and an aggregator speaking Walrus's HTTP API, storing blob
 * content on disk. No Walrus network can run here, so the embedded default and the tests use this.
 *
 *   publisher   PUT /v1/blobs?epochs=N[&permanent=true|&deletable=true]  raw bytes ->
 *               200 {"newlyCreated":{"blobObject":{...},"resourceOperation":{...},"cost":N}}
 *               or 200 {"alreadyCertified":{"blobId","event":{"txDigest","eventSeq"},"endEpoch"}}
 *               400 bad query, 413 body above `maxBlobBytes`
 *   aggregator  GET /v1/blobs/{blobId} -> 200 raw bytes (application/octet-stream) or 404
 *
 * Blob ids here are sha256(content) in unpadded base64url (43 characters, like real ids). Real Walrus
 * ids are derived from the erasure-coding metadata of the content, not from a plain hash; an auditor
 * that wants the real id of a dump computes it offline with @mysten/walrus-wasm
 * (`new BlobEncoder(1000).compute_metadata(bytes)`), which is too slow (about 3 s) for every test.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { join } from "node:path";

export interface WalrusServiceOptions {
  /** Folder for blob content and metadata (created if missing); reusing it keeps earlier blobs. */
  dir: string;
  /** Publisher port (default: a free one). */
  port?: number;
  /** Aggregator port (default: a free one). */
  aggregatorPort?: number;
  /** Largest accepted blob; public publishers limit uploads to 10 MiB. */
  maxBlobBytes?: number;
}

export interface WalrusService {
  publisherUrl: string;
  aggregatorUrl: string;
  stop(): Promise<void>;
  /** Answer every request with this HTTP status (e.g. 504) until called again with null. */
  setFault(status: number | null): void;
  /** Blobs stored so far (PUTs that created one). */
  readonly storedCount: number;
}

interface BlobMeta {
  blobId: string;
  objectId: string;
  size: number;
  registeredEpoch: number;
  endEpoch: number;
  deletable: boolean;
}

/** The epoch the local network is in; fixed, since nothing here expires. */
const CURRENT_EPOCH = 1;
const MAX_EPOCHS_AHEAD = 53;

/** The local service's blob id of `content`: sha256 in unpadded base64url (the auditor imports it to check a dump against its id). */
export function localBlobId(content: Uint8Array): string {
  return createHash("sha256").update(content).digest("base64url");
}

export async function startWalrusService(opts: WalrusServiceOptions): Promise<WalrusService> {
  const blobDir = join(opts.dir, "blobs");
  await mkdir(blobDir, { recursive: true });
  const maxBlobBytes = opts.maxBlobBytes ?? 10 * 1024 * 1024;
  let fault: number | null = null;
  let storedCount = 0;

  const guard = (handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>) => (req: IncomingMessage, res: ServerResponse) => {
    if (fault !== null) {
      req.resume();
      return send(res, fault, "text/plain", `local walrus: injected fault ${fault}`);
    }
    handler(req, res).catch((e) => send(res, 500, "text/plain", `local walrus: ${(e as Error).message}`));
  };

  const publisher = createServer(
    guard(async (req, res) => {
      const url = new URL(req.url ?? "/", "http://local");
      if (req.method !== "PUT" || url.pathname !== "/v1/blobs") {
        req.resume();
        return send(res, 404, "text/plain", "not found");
      }
      const epochs = Number(url.searchParams.get("epochs") ?? "1");
      if (!Number.isInteger(epochs) || epochs < 1 || epochs > MAX_EPOCHS_AHEAD) {
        req.resume();
        return send(res, 400, "text/plain", `epochs must be an integer from 1 to ${MAX_EPOCHS_AHEAD}`);
      }
      const body = await readBody(req, maxBlobBytes);
      if (!body) return send(res, 413, "text/plain", `blob larger than ${maxBlobBytes} bytes`);
      const deletable = url.searchParams.get("permanent") !== "true";
      const blobId = localBlobId(body);
      const metaPath = join(blobDir, `${blobId}.json`);
      const existing = await readMeta(metaPath);
      if (existing && existing.endEpoch >= CURRENT_EPOCH + epochs && !(existing.deletable && !deletable)) {
        return sendJson(res, {
          alreadyCertified: {
            blobId,
            event: { txDigest: fakeDigest("event", blobId), eventSeq: "0" },
            endEpoch: existing.endEpoch,
          },
        });
      }
      const meta: BlobMeta = {
        blobId,
        objectId: `0x${createHash("sha256").update(`object:${blobId}:${Date.now()}`).digest("hex")}`,
        size: body.length,
        registeredEpoch: CURRENT_EPOCH,
        endEpoch: CURRENT_EPOCH + epochs,
        deletable,
      };
      // Content first, metadata last (each written then renamed): metadata never points at missing bytes.
      await writeAtomic(join(blobDir, blobId), body);
      await writeAtomic(metaPath, Buffer.from(JSON.stringify(meta)));
      storedCount++;
      sendJson(res, {
        newlyCreated: {
          blobObject: {
            id: meta.objectId,
            registeredEpoch: meta.registeredEpoch,
            blobId,
            size: meta.size,
            encodingType: "RS2",
            certifiedEpoch: CURRENT_EPOCH,
            storage: { id: fakeDigest("storage", meta.objectId), startEpoch: CURRENT_EPOCH, endEpoch: meta.endEpoch, storageSize: meta.size },
            deletable,
          },
          resourceOperation: { registerFromScratch: { encodedLength: meta.size, epochsAhead: epochs } },
          cost: meta.size * epochs,
        },
      });
    }),
  );

  const aggregator = createServer(
    guard(async (req, res) => {
      const match = /^\/v1\/blobs\/([A-Za-z0-9_-]+)$/.exec(new URL(req.url ?? "/", "http://local").pathname);
      req.resume();
      if (req.method !== "GET" || !match) return send(res, 404, "text/plain", "not found");
      const meta = await readMeta(join(blobDir, `${match[1]}.json`));
      if (!meta) return send(res, 404, "text/plain", "blob not found");
      const content = await readFile(join(blobDir, meta.blobId));
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": content.length });
      res.end(content);
    }),
  );

  const [publisherPort, aggregatorPort] = await Promise.all([listen(publisher, opts.port), listen(aggregator, opts.aggregatorPort)]);
  return {
    publisherUrl: `http://127.0.0.1:${publisherPort}`,
    aggregatorUrl: `http://127.0.0.1:${aggregatorPort}`,
    setFault(status) {
      fault = status;
    },
    get storedCount() {
      return storedCount;
    },
    async stop() {
      await Promise.all([close(publisher), close(aggregator)]);
    },
  };
}

async function readBody(req: IncomingMessage, max: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > max) tooLarge = true;
    else chunks.push(chunk as Buffer);
  }
  return tooLarge ? undefined : Buffer.concat(chunks);
}

async function readMeta(path: string): Promise<BlobMeta | undefined> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as BlobMeta;
  } catch {
    return undefined;
  }
}

async function writeAtomic(path: string, content: Buffer): Promise<void> {
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(tmp, content);
  await rename(tmp, path);
  await stat(path);
}

const fakeDigest = (kind: string, seed: string) => createHash("sha256").update(`${kind}:${seed}`).digest("base64url");

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { "content-type": type });
  res.end(body);
}

function sendJson(res: ServerResponse, body: unknown): void {
  send(res, 200, "application/json", JSON.stringify(body));
}

function listen(server: Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve((server.address() as { port: number }).port));
  });
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
