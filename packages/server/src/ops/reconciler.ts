/**
 * Collects the outcome of settlements nobody came back for. A settle that answered
 * `settlement_pending`, or whose process died after broadcasting, leaves a `broadcast` entry that a
 * retry of the same payment resolves; a client that never retries would leave it unconfirmed for
 * good (and the unconfirmed gauge up). Every `intervalMs` this settles again, by the path a retry
 * takes, each such entry left alone for `afterMs`: long enough that a client's own retry comes
 * first and gets the answer. The ledger's leases keep it safe beside live settles and the
 * reconcilers of other processes: whoever takes the entry collects the outcome, once.
 */
import type { LedgerEntry, SettleOutcome, SettlementLedger, StoredRequest } from "@facilitator/core";

export interface ReconcilerOptions {
  ledger: SettlementLedger;
  /** Settles a stored request again; undefined when this process no longer serves its network. */
  settle(request: StoredRequest): Promise<SettleOutcome | undefined>;
  intervalMs: number;
  /** How long an entry must have been left alone (no write, no live lease) before it is collected. */
  afterMs: number;
  /** Entries looked at per round. */
  perRound?: number;
  now?: () => number;
  onOutcome?: (entry: LedgerEntry, outcome: SettleOutcome | undefined) => void;
  onError?: (error: unknown) => void;
}

export interface Reconciler {
  /** One round now; resolves with how many entries it settled again. */
  runOnce(): Promise<number>;
  /** Ends the timer and waits for a round in progress. */
  stop(): Promise<void>;
}

/** True when nobody is working on `entry` and it has waited `afterMs` since its last write. */
export function isAbandoned(entry: LedgerEntry, now: number, afterMs: number): boolean {
  return entry.state === "broadcast" && entry.request !== undefined && (entry.leaseUntil ?? 0) <= now && now - entry.updatedAt >= afterMs;
}

export function startReconciler(o: ReconcilerOptions): Reconciler {
  const now = o.now ?? Date.now;
  let round: Promise<number> | undefined;
  let stopped = false;

  const runOnce = (): Promise<number> => {
    round ??= (async () => {
      let settled = 0;
      for (const entry of await o.ledger.listUnconfirmed(o.perRound ?? 50)) {
        if (stopped) break;
        if (!isAbandoned(entry, now(), o.afterMs)) continue;
        const outcome = await o.settle(entry.request!);
        settled++;
        o.onOutcome?.(entry, outcome);
      }
      return settled;
    })().finally(() => (round = undefined));
    return round;
  };

  const timer = setInterval(() => runOnce().catch((e: unknown) => o.onError?.(e)), o.intervalMs);
  timer.unref();
  return {
    runOnce,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await round?.catch(() => undefined);
    },
  };
}
