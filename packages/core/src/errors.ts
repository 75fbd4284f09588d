/**
 * The one base class of errors a person can act on: a configuration, a start-up or a usage problem,
 * as opposed to a bug. After viem's BaseError: a short message saying what is wrong, the details
 * underneath (what a node, the OS or a library answered) and further lines (one per problem), all
 * composed into `message`. A CLI prints any FacilitatorError's message as it is, without a stack, and
 * exits 2; programs catch the one class instead of listing every kind.
 */

export interface FacilitatorErrorOptions {
  /** What went wrong underneath, in the words of whoever said it: printed after the short message. */
  details?: string;
  /** Further lines under the first, e.g. one per problem found. */
  metaMessages?: readonly string[];
  cause?: unknown;
}

export class FacilitatorError extends Error {
  /** What is wrong, in one line. */
  readonly shortMessage: string;
  readonly details: string | undefined;
  readonly metaMessages: readonly string[];

  /**
   * `message` is `shortMessage` (followed by `: details` when given), then, when there are further
   * lines, a colon and each line on its own: `invalid configuration:\n  - PORT: ...`.
   */
  constructor(shortMessage: string, opts: FacilitatorErrorOptions = {}) {
    const head = opts.details ? `${shortMessage}: ${opts.details}` : shortMessage;
    const meta = opts.metaMessages ?? [];
    super(meta.length ? `${head}:\n${meta.join("\n")}` : head, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.shortMessage = shortMessage;
    this.details = opts.details;
    this.metaMessages = meta;
  }
}
