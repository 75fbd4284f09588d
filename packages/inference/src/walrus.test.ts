import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startWalrusService, type WalrusService } from "@facilitator/devnet";
import { parseStoreAnswer, WalrusClient, WalrusError } from "./walrus.ts";

let dir: string;
let walrus: WalrusService;
const client = () => new WalrusClient({ publisherUrl: walrus.publisherUrl, aggregatorUrl: walrus.aggregatorUrl, backoffMs: 20 });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "walrus-"));
  walrus = await startWalrusService({ dir, maxBlobBytes: 1024 });
});

afterAll(async () => {
  await walrus?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("local Walrus service with WalrusClient", () => {
  it("stores a blob under its content's id and reads it back", async () => {
    const content = `batch dump ${Date.now()}`;
    const stored = await client().store(content);
    expect(stored.status).toBe("newlyCreated");
    expect(stored.blobId).toBe(createHash("sha256").update(content).digest("base64url"));
    expect(stored.blobId).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(new TextDecoder().decode(await client().read(stored.blobId))).toBe(content);
  });

  it("answers alreadyCertified for content it holds, with the same id", async () => {
    const first = await client().store("same content");
    const again = await client().store(new TextEncoder().encode("same content"));
    expect(again).toMatchObject({ status: "alreadyCertified", blobId: first.blobId });
  });

  it("speaks the real API shape: permanent blobs, epochs, 404 for unknown ids", async () => {
    const res = await fetch(`${walrus.publisherUrl}/v1/blobs?epochs=5&permanent=true`, { method: "PUT", body: "shape" });
    const json = await res.json();
    expect(json.newlyCreated.blobObject).toMatchObject({ deletable: false, storage: { startEpoch: 1, endEpoch: 6 }, size: 5 });
    expect((await fetch(`${walrus.aggregatorUrl}/v1/blobs/${"A".repeat(43)}`)).status).toBe(404);
    expect((await fetch(`${walrus.publisherUrl}/v1/blobs?epochs=0`, { method: "PUT", body: "x" })).status).toBe(400);
  });

  it("accepts a publisher URL that already ends in /v1/blobs (the old WALRUS_PUBLISHER_URL)", async () => {
    const c = new WalrusClient({ publisherUrl: `${walrus.publisherUrl}/v1/blobs/`, aggregatorUrl: walrus.aggregatorUrl });
    const stored = await c.store("old style url");
    expect(new TextDecoder().decode(await c.read(stored.blobId))).toBe("old style url");
  });

  it("retries a 504 until the publisher recovers", async () => {
    walrus.setFault(504);
    const pending = new WalrusClient({ publisherUrl: walrus.publisherUrl, aggregatorUrl: walrus.aggregatorUrl, backoffMs: 50, attempts: 8 }).store("after the outage");
    setTimeout(() => walrus.setFault(null), 300);
    await expect(pending).resolves.toMatchObject({ status: "newlyCreated" });
  });

  it("gives up on a lasting 5xx with a transient error, and at once on a 4xx", async () => {
    walrus.setFault(503);
    try {
      const err = await client().store("never").catch((e) => e);
      expect(err).toBeInstanceOf(WalrusError);
      expect(err).toMatchObject({ status: 503, transient: true });
    } finally {
      walrus.setFault(null);
    }
    const tooLarge = await client().store("x".repeat(2048)).catch((e) => e);
    expect(tooLarge).toMatchObject({ status: 413, transient: false });
  });

  it("parses both publisher answers and refuses anything else", () => {
    expect(parseStoreAnswer({ newlyCreated: { blobObject: { blobId: "abc", id: "0x1", storage: { endEpoch: 9 } } } })).toEqual({ blobId: "abc", status: "newlyCreated", endEpoch: 9, objectId: "0x1" });
    expect(parseStoreAnswer({ alreadyCertified: { blobId: "abc", endEpoch: 3 } })).toEqual({ blobId: "abc", status: "alreadyCertified", endEpoch: 3 });
    expect(() => parseStoreAnswer({ error: "x" })).toThrow(WalrusError);
  });

  it("keeps blobs on disk across a restart of the service", async () => {
    const stored = await client().store("durable");
    await walrus.stop();
    walrus = await startWalrusService({ dir, maxBlobBytes: 1024 });
    expect(new TextDecoder().decode(await client().read(stored.blobId))).toBe("durable");
  });
});
