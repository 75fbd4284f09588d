/**
 * Does a blob's content match its id? Real Walrus ids are recomputed offline with Walrus's own
 * encoder (Reed-Solomon over 1000 shards; about 3 s per blob). The local Walrus-compatible service
 * has its own content-hash id scheme, imported from the devnet rather than restated here.
 */
export type BlobIdCheck = "local" | "walrus" | "none";

export const BLOB_ID_CHECKS: readonly BlobIdCheck[] = ["local", "walrus", "none"];

/** Walrus's network has 1000 shards; the blob id depends on the shard count. */
const WALRUS_SHARDS = 1000;

let encoder: Promise<{ compute_metadata(data: Uint8Array): unknown }> | undefined;

/** The real Walrus blob id of `bytes` (base64url, no padding). */
export async function walrusBlobId(bytes: Uint8Array): Promise<string> {
  encoder ??= import("@mysten/walrus-wasm").then((m) => new m.BlobEncoder(WALRUS_SHARDS));
  const metadata = (await encoder).compute_metadata(bytes) as [number[] | Uint8Array, ...unknown[]];
  return Buffer.from(Uint8Array.from(metadata[0])).toString("base64url");
}

/** The id `bytes` would have under the chosen scheme; undefined for "none". */
export async function expectedBlobId(bytes: Uint8Array, scheme: BlobIdCheck): Promise<string | undefined> {
  if (scheme === "walrus") return walrusBlobId(bytes);
  // Loaded only for the local world, so auditing real Walrus never loads the devnet.
  if (scheme === "local") return (await import("@facilitator/devnet")).localBlobId(bytes);
  return undefined;
}
