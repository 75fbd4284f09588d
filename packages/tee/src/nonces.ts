/**
 * Freshness of an attestation document: the registrar issues a random nonce, the enclave puts it in
 * the document it produces (`GET /enclave/attestation?nonce=<40 hex digits>`), and the registrar
 * accepts each nonce once, before it expires. A document made for an earlier registration, or
 * recorded from another enclave's answer, is refused.
 *
 * The verifier redeems the nonce last, after every other check passed: a refused document does not
 * use up the nonce, and of two documents carrying the same nonce, only the first accepted one counts
 * (each store redeems atomically, so two concurrent verifications cannot both succeed).
 */
import { randomBytes } from "node:crypto";
import { toHex, type Hex } from "viem";

/** nitriding accepts exactly 20-byte nonces (40 hex digits); anything else gets an HTTP 400. */
export const NONCE_BYTES = 20;

export type NonceRefusal = "nonce_missing" | "nonce_unknown" | "nonce_expired" | "nonce_reused";
export type NonceVerdict = { ok: true } | { ok: false; reason: NonceRefusal; message: string };

/** Decides whether a document's nonce is acceptable, and consumes it when it is. */
export interface NonceCheck {
  redeem(nonce: Uint8Array | undefined, now: Date): NonceVerdict | Promise<NonceVerdict>;
}

/** An issued nonce as a store keeps it: until when it may be redeemed, and whether it was. */
export interface NonceRecord {
  expiresAt: number;
  used: boolean;
}

/** Whether a nonce's record may be redeemed at `now` (ms). The one rule every store applies, atomically. */
export const redeemable = (record: NonceRecord | undefined, now: number): record is NonceRecord => !!record && !record.used && now <= record.expiresAt;

/**
 * Where issued nonces are kept: this process's memory (MemoryNonceStore), or a store every registrar
 * process shares (Redis or LMDB, in @facilitator/inference), so a nonce issued by one process is
 * redeemed by another, once.
 */
export interface NonceStore {
  /** Keeps a fresh nonce's record until `keepUntil` (ms; past its expiry, so late reuse is named as such). */
  add(nonce: Hex, record: NonceRecord, now: number, keepUntil: number): Promise<void>;
  /** Atomically: the record as it was before (none past its keep time), marked used when `redeemable` at `now`. */
  redeem(nonce: Hex, now: number): Promise<NonceRecord | undefined>;
}

export interface NonceBookOptions {
  /** How long an issued nonce may be redeemed. */
  ttlMs: number;
  /** Where nonces are kept (default: this process's memory, 10,000 outstanding at most). */
  store?: NonceStore;
}

/**
 * The registrar's nonces: issued at random, redeemed once before they expire. Kept in `store`; a
 * restart of an in-memory book forgets every outstanding nonce, which only means the operator asks for
 * a new one.
 */
export class NonceBook implements NonceCheck {
  private readonly ttlMs: number;
  private readonly store: NonceStore;

  constructor(opts: NonceBookOptions) {
    if (!(opts.ttlMs > 0)) throw new Error("NonceBook ttlMs must be positive");
    this.ttlMs = opts.ttlMs;
    this.store = opts.store ?? new MemoryNonceStore();
  }

  /** A fresh nonce (20 random bytes, lower-case hex) and when it stops being accepted. */
  async issue(now: Date = new Date()): Promise<{ nonce: Hex; expiresAt: Date }> {
    const nonce = toHex(randomBytes(NONCE_BYTES));
    const expiresAt = now.getTime() + this.ttlMs;
    await this.store.add(nonce, { expiresAt, used: false }, now.getTime(), expiresAt + this.ttlMs);
    return { nonce, expiresAt: new Date(expiresAt) };
  }

  async redeem(nonce: Uint8Array | undefined, now: Date): Promise<NonceVerdict> {
    if (!nonce || nonce.length === 0) return { ok: false, reason: "nonce_missing", message: "the document carries no nonce; ask the registrar for one and attest with it" };
    const key = toHex(nonce);
    return nonceVerdict(key, await this.store.redeem(key, now.getTime()), now.getTime());
  }
}

/** The verdict on a nonce whose record (before redeeming) was `record`. Pure. */
export function nonceVerdict(key: Hex, record: NonceRecord | undefined, now: number): NonceVerdict {
  if (!record) return { ok: false, reason: "nonce_unknown", message: `nonce ${key} was not issued by this registrar (or was forgotten long ago)` };
  if (record.used) return { ok: false, reason: "nonce_reused", message: `nonce ${key} was already used by an accepted document` };
  if (now > record.expiresAt) return { ok: false, reason: "nonce_expired", message: `nonce ${key} expired at ${new Date(record.expiresAt).toISOString()}` };
  return { ok: true };
}

/** Nonces in this process's memory: enough for one registrar process. */
export class MemoryNonceStore implements NonceStore {
  private readonly entries = new Map<string, NonceRecord & { keepUntil: number }>();

  /** @param capacity outstanding nonces kept at most; the oldest is forgotten first. */
  constructor(private readonly capacity = 10_000) {}

  async add(nonce: Hex, record: NonceRecord, now: number, keepUntil: number): Promise<void> {
    this.prune(now);
    while (this.entries.size >= this.capacity) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(nonce, { ...record, keepUntil });
  }

  async redeem(nonce: Hex, now: number): Promise<NonceRecord | undefined> {
    this.prune(now);
    const entry = this.entries.get(nonce);
    if (!entry || now > entry.keepUntil) return undefined;
    const before = { expiresAt: entry.expiresAt, used: entry.used };
    if (redeemable(entry, now)) entry.used = true;
    return before;
  }

  private prune(now: number): void {
    for (const [key, entry] of this.entries) {
      if (entry.keepUntil >= now) break; // insertion order is keep order (one ttl each)
      this.entries.delete(key);
    }
  }
}

/**
 * Accepts any nonce, consuming nothing: for re-verifying an archived document (an auditor checking
 * a registration long after it happened), where freshness was the registrar's check at the time.
 */
export const NONCE_NOT_CHECKED: NonceCheck = { redeem: () => ({ ok: true }) };
