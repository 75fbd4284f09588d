/**
 * Freshness of an attestation document: the registrar issues a random nonce, the enclave puts it in
 * the document it produces (`GET /enclave/attestation?nonce=<40 hex digits>`), and the registrar
 * accepts each nonce once, before it expires. A document made for an earlier registration, or
 * recorded from another enclave's answer, is refused.
 *
 * The verifier redeems the nonce last, after every other check passed: a refused document does not
 * use up the nonce, and of two documents carrying the same nonce, only the first accepted one counts
 * (redeeming is synchronous, so two concurrent verifications cannot both succeed).
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

interface Entry {
  expiresAt: number;
  used: boolean;
}

export interface NonceBookOptions {
  /** How long an issued nonce may be redeemed. */
  ttlMs: number;
  /** Outstanding nonces kept at most; the oldest is forgotten first. Default 10,000. */
  capacity?: number;
}

/**
 * Nonces issued and redeemed in this process's memory. Several registrar processes need a shared
 * store instead (the `NonceCheck` interface is the seam); a restart forgets every outstanding nonce,
 * which only means the operator asks for a new one.
 */
export class NonceBook implements NonceCheck {
  private readonly entries = new Map<string, Entry>();
  private readonly ttlMs: number;
  private readonly capacity: number;

  constructor(opts: NonceBookOptions) {
    if (!(opts.ttlMs > 0)) throw new Error("NonceBook ttlMs must be positive");
    this.ttlMs = opts.ttlMs;
    this.capacity = opts.capacity ?? 10_000;
  }

  /** A fresh nonce (20 random bytes, lower-case hex) and when it stops being accepted. */
  issue(now: Date = new Date()): { nonce: Hex; expiresAt: Date } {
    this.prune(now.getTime());
    while (this.entries.size >= this.capacity) this.entries.delete(this.entries.keys().next().value!);
    const nonce = toHex(randomBytes(NONCE_BYTES));
    const expiresAt = now.getTime() + this.ttlMs;
    this.entries.set(nonce, { expiresAt, used: false });
    return { nonce, expiresAt: new Date(expiresAt) };
  }

  redeem(nonce: Uint8Array | undefined, now: Date): NonceVerdict {
    this.prune(now.getTime());
    if (!nonce || nonce.length === 0) return { ok: false, reason: "nonce_missing", message: "the document carries no nonce; ask the registrar for one and attest with it" };
    const key = toHex(nonce);
    const entry = this.entries.get(key);
    if (!entry) return { ok: false, reason: "nonce_unknown", message: `nonce ${key} was not issued by this registrar (or was forgotten long ago)` };
    if (entry.used) return { ok: false, reason: "nonce_reused", message: `nonce ${key} was already used by an accepted document` };
    if (now.getTime() > entry.expiresAt) {
      return { ok: false, reason: "nonce_expired", message: `nonce ${key} expired at ${new Date(entry.expiresAt).toISOString()}` };
    }
    entry.used = true;
    return { ok: true };
  }

  /** Entries are kept one extra ttl after expiry, so that late reuse is named as such, then dropped. */
  private prune(now: number): void {
    for (const [key, entry] of this.entries) {
      if (entry.expiresAt + this.ttlMs >= now) break; // insertion order is expiry order (one ttl)
      this.entries.delete(key);
    }
  }
}

/**
 * Accepts any nonce, consuming nothing: for re-verifying an archived document (an auditor checking
 * a registration long after it happened), where freshness was the registrar's check at the time.
 */
export const NONCE_NOT_CHECKED: NonceCheck = { redeem: () => ({ ok: true }) };
