import type { LedgerEntry } from "@facilitator/core";

/** The stored form of a write: version bumped, undefined fields dropped (so every store returns the same shape). */
export function nextStored(next: Omit<LedgerEntry, "version">, expectedVersion: number): LedgerEntry {
  if (!next.key) throw new Error("ledger entry needs a key");
  const stored: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(next)) if (v !== undefined) stored[k] = v;
  stored.version = expectedVersion + 1;
  return stored as unknown as LedgerEntry;
}
