/**
 * The facilitator's proof API (`GET /inference/settlements/:id`) as a HINT: it may save a scan by
 * naming the batch, and its proof is checked like any claim, but nothing it says is evidence.
 */
import { isHex, type Hex } from "viem";

export interface SettlementHint {
  root?: Hex;
  index?: number;
  proof?: Hex[];
  batchSize?: number;
  walrusBlobId?: string;
  transactionHash?: Hex;
  network?: string;
  relayAddress?: string;
}

const hex32 = (v: unknown): v is Hex => isHex(v, { strict: true }) && (v as string).length === 66;

/** Keeps only well-formed fields: a malformed hint is ignored, not trusted partly. */
export function parseHint(json: unknown): SettlementHint {
  if (typeof json !== "object" || json === null) return {};
  const o = json as Record<string, unknown>;
  const hint: SettlementHint = {};
  if (hex32(o.root)) hint.root = o.root;
  if (typeof o.index === "number" && Number.isInteger(o.index)) hint.index = o.index;
  if (Array.isArray(o.proof) && o.proof.every(hex32)) hint.proof = o.proof as Hex[];
  if (typeof o.batchSize === "number") hint.batchSize = o.batchSize;
  if (typeof o.walrusBlobId === "string") hint.walrusBlobId = o.walrusBlobId;
  if (hex32(o.transactionHash)) hint.transactionHash = o.transactionHash;
  if (typeof o.network === "string") hint.network = o.network;
  if (typeof o.relayAddress === "string") hint.relayAddress = o.relayAddress;
  return hint;
}

export type HintFetch = { ok: true; hint: SettlementHint } | { ok: false; error: string };

export async function fetchHint(url: string, timeoutMs = 10_000): Promise<HintFetch> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: "application/json" } });
    if (!res.ok) return { ok: false, error: `the hint URL answered ${res.status}` };
    return { ok: true, hint: parseHint(await res.json()) };
  } catch (e) {
    return { ok: false, error: `the hint URL could not be read: ${(e as Error).message}` };
  }
}
