import type { LedgerEntry, LedgerState } from "@facilitator/core";

/** The stored form of a write: version bumped, undefined fields dropped (so every store returns the same shape). */
export function nextStored(next: Omit<LedgerEntry, "version">, expectedVersion: number): LedgerEntry {
  if (!next.key) throw new Error("ledger entry needs a key");
  const stored: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(next)) if (v !== undefined) stored[k] = v;
  stored.version = expectedVersion + 1;
  return stored as unknown as LedgerEntry;
}

/**
 * Which entries may be forgotten. A finished payment (`success`, `failed`) needs its record only while
 * the chain would still take the same payment again; after that the chain refuses a replay by itself:
 *  - EIP-3009: a success used the authorization's nonce on chain, and the settle checks
 *    `authorizationState` (the transfer itself would revert too). A failure moved nothing and left the
 *    nonce unused: a later attempt can still move the funds, but once at most, as the payer signed.
 *  - Solana: the settle looks the (deterministic) signature up before sending, and a transaction that
 *    did not land can never land once its blockhash expired (about 150 slots, a minute or so).
 *  - ERC-2612 permit: a permit is skipped only when this payment's own entry recorded it
 *    (`planPermitSettlement`); a fresh attempt needs the owner's next nonce, which a settled permit used.
 *  - A transfer method the chain would not refuse by itself sets `keepUntil`: kept until then whatever
 *    the retention.
 * A `claimed` entry expires after the retention too: its live holder rewrites it every third of a lease
 * (each write starts the retention again), and one whose holder died sent nothing, so any settle may
 * take it over, exactly as if it were absent. `broadcast` entries never expire: they hold recorded
 * bytes whose outcome is not known yet (the collector collects it).
 */
export function isFinished(state: LedgerState): boolean {
  return state === "success" || state === "failed";
}

/** How long from `now` to keep `entry` (ms), or undefined to keep it for good (as every entry, without a retention). */
export function keepForMs(entry: LedgerEntry, retentionMs: number | undefined, now: number): number | undefined {
  if (!retentionMs || !(isFinished(entry.state) || entry.state === "claimed")) return undefined;
  const ms = Math.max(retentionMs, (entry.keepUntil ?? 0) - now);
  return Number.isSafeInteger(ms) ? ms : undefined; // a deadline at the end of time: keep for good
}
