/** Bounded receipt waits: never longer than the caller allows, never an exception for "not yet". */
import { formatTransactionReceipt, type Hash, type PublicClient, type TransactionReceipt } from "viem";

/** The receipt, null when the node has none, and a throw only when the node could not be asked. */
export async function getReceipt(client: PublicClient, hash: Hash): Promise<TransactionReceipt | null> {
  const raw = await client.request({ method: "eth_getTransactionReceipt", params: [hash] });
  return raw ? formatTransactionReceipt(raw) : null;
}

export interface WaitOptions {
  timeoutMs: number;
  /** The longest wait between polls; the first waits are shorter (see {@link pollWaits}). */
  pollingIntervalMs: number;
  /** Called (not awaited) every `stallCheckMs` while no receipt came, e.g. to re-send dropped transactions. */
  onStall?: () => Promise<void>;
  stallCheckMs?: number;
  /** Asked (awaited) at each stall check: true ends the wait at once, with no receipt. */
  givesUp?: () => Promise<boolean>;
}

/** Polls for the receipt until `timeoutMs`; undefined when none came in time. Node errors count as "not yet". */
export async function waitForReceipt(client: PublicClient, hash: Hash, opts: WaitOptions): Promise<TransactionReceipt | undefined> {
  const start = Date.now();
  const deadline = start + opts.timeoutMs;
  let nextStall = start + (opts.stallCheckMs ?? Infinity);
  let nextGiveUpCheck = nextStall;
  const waits = pollWaits(opts.pollingIntervalMs);
  for (;;) {
    // A poll never outlives the deadline, however long the node takes to answer.
    const receipt = await beforeDeadline(getReceipt(client, hash), deadline).catch(() => null);
    if (receipt) return receipt;
    const now = Date.now();
    if (now >= deadline) return undefined;
    if (opts.onStall && now >= nextStall) {
      nextStall = now + opts.stallCheckMs!;
      void opts.onStall().catch(() => undefined);
    }
    if (opts.givesUp && now >= nextGiveUpCheck) {
      nextGiveUpCheck = now + (opts.stallCheckMs ?? Infinity);
      if (await beforeDeadline(opts.givesUp(), deadline).catch(() => false)) return undefined;
    }
    await new Promise((r) => setTimeout(r, Math.min(waits.next().value, deadline - now)));
  }
}

/**
 * Waits between receipt polls: a tenth of the interval, doubling up to the interval. A node may answer
 * a send before the block holding it is sealed (anvil's automine, chains with sub-second blocks), so
 * the first poll often comes just too early; a full interval then would be most of the settle's time.
 */
export function* pollWaits(intervalMs: number): Generator<number, never> {
  for (let wait = Math.max(1, Math.ceil(intervalMs / 10)); ; wait = Math.min(intervalMs, wait * 2)) yield wait;
}

/** The promise's value, or null once `deadline` (epoch ms) passes first. */
function beforeDeadline<T>(work: Promise<T>, deadline: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), Math.max(0, deadline - Date.now()))));
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}
