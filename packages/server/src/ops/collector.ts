/**
 * Collects the outcome of settlements nobody came back for. A settle that answered
 * `settlement_pending`, or whose process died after broadcasting, leaves a `broadcast` entry that a
 * retry of the same payment resolves; a client that never retries would leave it unconfirmed for
 * good (and the unconfirmed gauge up). Every `intervalMs` this collects each such entry left alone
 * for `afterMs` (long enough that a client's own retry comes first): the mechanism waits for the
 * recorded transaction, re-sending its bytes, and records the outcome; it never signs anything. The
 * ledger's compare-and-set keeps it safe beside live settles and other processes' collectors:
 * whoever takes the entry at the version it read records the outcome, once.
 */
import { Reason, type LedgerEntry, type SettleOutcome, type SettlementLedger } from "@facilitator/core";

export interface CollectorOptions {
  ledger: SettlementLedger;
  /** Collects one entry's outcome (Facilitator.collect); undefined when there was nothing to collect. */
  collect(entry: LedgerEntry): Promise<SettleOutcome | undefined>;
  intervalMs: number;
  /** How long an entry must have been left alone (no write, no live lease) before it is collected. */
  afterMs: number;
  /** Entries looked at per round. */
  perRound?: number;
  now?: () => number;
  onOutcome?: (entry: LedgerEntry, outcome: SettleOutcome) => void;
  onError?: (error: unknown, entry?: LedgerEntry) => void;
}

export interface Collector {
  /** One round now; resolves with how many outcomes it collected. */
  runOnce(): Promise<number>;
  /** Ends the timer and waits for a round in progress. */
  stop(): Promise<void>;
}

/** True when nobody is working on `entry` and it has waited `afterMs` since its last write. */
export function isAbandoned(entry: LedgerEntry, now: number, afterMs: number): boolean {
  return entry.state === "broadcast" && entry.request !== undefined && (entry.leaseUntil ?? 0) <= now && now - entry.updatedAt >= afterMs;
}

export function startCollector(o: CollectorOptions): Collector {
  const now = o.now ?? Date.now;
  const perRound = o.perRound ?? 50;
  let round: Promise<number> | undefined;
  let stopped = false;
  /** Where the next round starts, so entries nobody can collect never hide the others. */
  let after: string | undefined;

  async function collectOne(listed: LedgerEntry): Promise<boolean> {
    // A round can take a while: decide on the entry as it is now, and collect at exactly this version.
    const entry = await o.ledger.get(listed.key);
    if (!entry || !isAbandoned(entry, now(), o.afterMs)) return false;
    const outcome = await o.collect(entry);
    // A duplicate means another settle or collector took the entry first: it records the outcome.
    if (!outcome || (!outcome.success && outcome.reason === Reason.duplicateSettlement)) return false;
    o.onOutcome?.(entry, outcome);
    return true;
  }

  const runOnce = (): Promise<number> => {
    round ??= (async () => {
      const listed = await o.ledger.listUnconfirmed(perRound, after);
      after = listed.length < perRound ? undefined : listed[listed.length - 1]!.key;
      let collected = 0;
      for (const entry of listed) {
        if (stopped) break;
        try {
          if (await collectOne(entry)) collected++;
        } catch (e) {
          o.onError?.(e, entry); // one entry's trouble does not hold up the others
        }
      }
      return collected;
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
