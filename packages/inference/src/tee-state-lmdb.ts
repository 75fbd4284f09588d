/**
 * The registrar's nonces and the heartbeat relay's per-TEE slots in an LMDB directory of their own
 * (DATA_DIR/tees), for deployments without Redis: they survive a restart, and processes of one host
 * sharing DATA_DIR share them (LMDB serialises writers across processes). Every redeem and take is one
 * write transaction, so it is atomic. Entries past their keep time are dropped, a few per write.
 */
import { open, type RootDatabase } from "lmdb";
import { redeemable, type NonceRecord, type NonceStore } from "@facilitator/tee";
import type { Hex } from "viem";
import { slotHeld, type HeartbeatSlots } from "./heartbeat.ts";

type Kind = "n" | "h";
/** ["n", nonce] nonce records, ["h", teeId] slots, ["x", keepUntil, kind, id] what to drop when. */
type Key = [Kind, string] | ["x", number, Kind, string];
type Stored = { keepUntil: number } & ({ expiresAt: number; used: boolean } | { takenAt: number });

/** Entries dropped per write at most (the rest on later ones). */
const SWEEP_PER_WRITE = 100;

export class LmdbTeeState implements NonceStore, HeartbeatSlots {
  private readonly db: RootDatabase<Stored | true, Key>;

  constructor(readonly path: string) {
    // overlappingSync off: a write resolves only once fsync'd.
    this.db = open<Stored | true, Key>({ path, compression: false, overlappingSync: false, cache: false });
  }

  async add(nonce: Hex, record: NonceRecord, now: number, keepUntil: number): Promise<void> {
    await this.db.transaction(() => {
      this.sweep(now);
      this.put("n", nonce, { ...record, keepUntil });
    });
  }

  redeem(nonce: Hex, now: number): Promise<NonceRecord | undefined> {
    return this.db.transaction(() => {
      this.sweep(now);
      const entry = this.db.get(["n", nonce]) as (NonceRecord & { keepUntil: number }) | undefined;
      if (!entry || now > entry.keepUntil) return undefined;
      const before = { expiresAt: entry.expiresAt, used: entry.used };
      if (redeemable(before, now)) this.db.put(["n", nonce], { ...entry, used: true });
      return before;
    });
  }

  take(teeId: Hex, now: number, intervalMs: number): Promise<number | undefined> {
    return this.db.transaction(() => {
      this.sweep(now);
      const held = this.db.get(["h", teeId]) as { takenAt: number; keepUntil: number } | undefined;
      if (slotHeld(held?.takenAt, now, intervalMs)) return held!.takenAt;
      if (held) this.db.remove(["x", held.keepUntil, "h", teeId]);
      this.put("h", teeId, { takenAt: now, keepUntil: now + intervalMs });
      return undefined;
    });
  }

  async close(): Promise<void> {
    await this.db.close();
  }

  private put(kind: Kind, id: string, value: Stored): void {
    this.db.put([kind, id], value);
    this.db.put(["x", value.keepUntil, kind, id], true);
  }

  private sweep(now: number): void {
    for (const { key } of this.db.getRange({ start: ["x"], end: ["x", now], limit: SWEEP_PER_WRITE })) {
      const [, , kind, id] = key as ["x", number, Kind, string];
      this.db.remove(key);
      this.db.remove([kind, id]);
    }
  }
}
