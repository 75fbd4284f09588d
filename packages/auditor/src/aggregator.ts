/** Fetching blobs from a Walrus aggregator (`GET {aggregator}/v1/blobs/{blobId}`). */

export type BlobFetch = { ok: true; bytes: Uint8Array } | { ok: false; error: string; missing: boolean };

/** Dumps are small JSON; refuse anything absurd rather than exhaust memory. */
const MAX_BLOB_BYTES = 64 * 1024 * 1024;

export async function fetchBlob(aggregatorUrl: string, blobId: string, timeoutMs = 20_000): Promise<BlobFetch> {
  const url = `${aggregatorUrl.replace(/\/+$/, "")}/v1/blobs/${encodeURIComponent(blobId)}`;
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    return { ok: false, missing: false, error: `cannot reach the aggregator at ${url}: ${(e as Error).message}` };
  }
  if (res.status === 404) {
    await res.body?.cancel();
    return { ok: false, missing: true, error: `blob ${blobId} is missing from the aggregator (404)` };
  }
  if (!res.ok) {
    await res.body?.cancel();
    return { ok: false, missing: false, error: `the aggregator answered ${res.status} for blob ${blobId}` };
  }
  const declared = Number(res.headers.get("content-length") ?? 0);
  if (declared > MAX_BLOB_BYTES) {
    await res.body?.cancel();
    return { ok: false, missing: false, error: `blob ${blobId} is ${declared} bytes, over the ${MAX_BLOB_BYTES}-byte limit` };
  }
  const bytes = new Uint8Array(await res.arrayBuffer());
  if (bytes.length > MAX_BLOB_BYTES) return { ok: false, missing: false, error: `blob ${blobId} is over the ${MAX_BLOB_BYTES}-byte limit` };
  return { ok: true, bytes };
}

/** One fetch per blob id per audit: a scan may meet the same blob under several events. */
export function blobCache(aggregatorUrl: string): (blobId: string) => Promise<BlobFetch> {
  const seen = new Map<string, Promise<BlobFetch>>();
  return (blobId) => {
    let hit = seen.get(blobId);
    if (!hit) seen.set(blobId, (hit = fetchBlob(aggregatorUrl, blobId)));
    return hit;
  };
}
