/**
 * The next nonce of one facilitator key, kept locally so concurrent settlements get distinct nonces
 * without asking the node each time. Starts from the node's pending count; only ever moves down to
 * take back the most recent nonce when it was never sent.
 */
export class NonceManager {
  private next?: number;
  private loading?: Promise<number>;
  /** The node's pending count when this manager started: nonces below it were never ours to hand out. */
  private first?: number;
  /** Nonces handed out whose transaction has not been sent (or given back) yet. */
  readonly reserved = new Set<number>();

  constructor(private readonly pendingCount: () => Promise<number>) {}

  /**
   * Reserves `count` consecutive nonces (e.g. a permit and its transferFrom) and returns the first.
   * Reserved in one synchronous step, so concurrent callers never interleave inside a run.
   */
  async acquire(count = 1): Promise<number> {
    if (this.next === undefined) {
      this.loading ??= this.pendingCount().finally(() => (this.loading = undefined));
      const pending = await this.loading;
      if (this.next === undefined) this.first = this.next = pending; // the first caller back initialises
    }
    const first = this.next;
    this.next += count;
    for (let nonce = first; nonce < this.next; nonce++) this.reserved.add(nonce);
    return first;
  }

  /** The transaction at `nonce` went to the node (or its nonce was consumed otherwise). */
  sent(nonce: number): void {
    this.reserved.delete(nonce);
  }

  /**
   * The transaction at `nonce` never reached the chain. When it was the last one handed out the nonce
   * is simply reused ("reused"); otherwise later nonces are already out and the hole must be filled ("gap").
   */
  giveBack(nonce: number): "reused" | "gap" {
    this.reserved.delete(nonce);
    if (this.next === nonce + 1) {
      this.next = nonce;
      return "reused";
    }
    return "gap";
  }

  /** Moves past nonces the node knows of (someone else used this key, or a pool entry we did not track). */
  async resync(): Promise<void> {
    const count = await this.pendingCount();
    if (this.next === undefined) this.first = count;
    if (this.next === undefined || count > this.next) this.next = count;
  }

  /** The first nonce this manager handed out (or would), if known. */
  start(): number | undefined {
    return this.first;
  }

  /** The nonce the next `acquire` would return, if known. */
  peek(): number | undefined {
    return this.next;
  }
}
