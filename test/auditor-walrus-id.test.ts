/**
 * `--check-blob-id walrus`: the dump is held to its REAL Walrus blob id, recomputed offline with
 * Walrus's own encoder (about 3 s per blob). No Walrus network runs here, so a small aggregator
 * stand-in serves blobs under their real ids; the local service's ids (content sha256) fail it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAuditor, walrusBlobId } from "@facilitator/auditor";
import { listen, type Listening } from "@facilitator/server/testing";
import { CHAIN_ID, startAuditWorld, type AuditWorld } from "./helpers/auditor-world.ts";

let world: AuditWorld;
let aggregator: Listening;
const blobs = new Map<string, Buffer>();

beforeAll(async () => {
  world = await startAuditWorld();
  // Stands in for a Walrus aggregator (GET /v1/blobs/{id} -> bytes | 404): none can run here.
  aggregator = await listen((req, res) => {
    const body = blobs.get((req.url ?? "").replace(/^\/v1\/blobs\//, ""));
    res.writeHead(body ? 200 : 404).end(body ?? "not found");
  });
});

afterAll(async () => {
  await aggregator?.close();
  await world?.stop();
});

describe("blob ids checked against Walrus's own encoding", () => {
  it("verifies a dump stored under its real Walrus id, and rejects a local-service id", async () => {
    const tree = world.buildBatch([world.record("walrus 1"), world.record("walrus 2")]);
    const bytes = Buffer.from(tree.dumpJson);
    const realId = await walrusBlobId(bytes);
    expect(realId).toMatch(/^[A-Za-z0-9_-]{43}$/);
    blobs.set(realId, bytes);
    await world.settleBatch(tree.root, 2, realId);

    const local = await world.anchorBatch([world.record("local id 1")]);
    blobs.set(local.blobId, Buffer.from(local.tree.dumpJson));

    const auditor = await createAuditor({ rpcUrl: world.rpcUrl, chainId: CHAIN_ID, relayAddress: world.relay, aggregatorUrl: aggregator.url, teeKeys: world.teeKeys, blobIdCheck: "walrus" });
    const good = await auditor.verifyBatch(tree.root);
    expect(good.verified).toBe(true);
    expect(good.checks.find((c) => c.name === "blob-id")!.detail).toBe(`content hashes to ${realId} under Walrus's encoding`);

    const bad = await auditor.verifyBatch(local.root);
    expect([bad.verified, bad.failedCheck]).toEqual([false, "blob-id"]);
    expect(bad.checks.find((c) => c.name === "blob-id")!.detail).toMatch(new RegExp(`under Walrus's encoding, not to the anchored blob id ${local.blobId}$`));
  });
});
