/**
 * The contract every shared TEE state keeps (the registrar's nonces, the heartbeat relay's slots), as
 * one vitest suite taking a factory, so the in-memory, LMDB and Redis stores run the very same checks.
 * Time is an argument of every call, so expiry is tested without waiting.
 */
import { afterAll, describe, expect, it } from "vitest";
import type { Hex } from "viem";
import type { NonceStore } from "@facilitator/tee";
import type { HeartbeatSlots } from "../heartbeat.ts";

export type TeeState = NonceStore & HeartbeatSlots;

export interface TeeStateHarness {
  /** A fresh, empty store. */
  create(): Promise<TeeState>;
  /** A second handle onto the store behind `state` (another connection or environment handle), where there can be one. */
  another?(state: TeeState): Promise<TeeState>;
  cleanup(): Promise<void>;
}

const T0 = 1_800_000_000_000;
const TTL = 60_000;
let counter = 0;
const id = (): Hex => `0x${(++counter).toString(16).padStart(40, "0")}`;
const fresh = { expiresAt: T0 + TTL, used: false };

export function describeTeeStateContract(name: string, harness: TeeStateHarness): void {
  describe(name, () => {
    afterAll(() => harness.cleanup());

    it("redeems an issued nonce once: the record as it was, then marked used", async () => {
      const s = await harness.create();
      const n = id();
      await s.add(n, fresh, T0, T0 + 2 * TTL);
      expect(await s.redeem(n, T0 + 1)).toEqual(fresh);
      expect(await s.redeem(n, T0 + 2)).toEqual({ ...fresh, used: true });
    });

    it("knows no nonce it was never given, and forgets one past its keep time", async () => {
      const s = await harness.create();
      const n = id();
      expect(await s.redeem(id(), T0)).toBeUndefined();
      await s.add(n, fresh, T0, T0 + 2 * TTL);
      expect(await s.redeem(n, T0 + 2 * TTL + 1)).toBeUndefined();
    });

    it("does not mark an expired nonce used", async () => {
      const s = await harness.create();
      const n = id();
      await s.add(n, fresh, T0, T0 + 2 * TTL);
      expect(await s.redeem(n, T0 + TTL + 1)).toEqual(fresh);
      expect(await s.redeem(n, T0 + TTL + 2)).toEqual(fresh);
    });

    it("of concurrent redemptions of one nonce, through every handle, exactly one finds it unused", async () => {
      const s = await harness.create();
      const other = harness.another ? await harness.another(s) : s;
      const n = id();
      await s.add(n, fresh, T0, T0 + 2 * TTL);
      const seen = await Promise.all([s, other, s, other].map((h) => h.redeem(n, T0 + 1)));
      expect(seen.filter((r) => r && !r.used)).toHaveLength(1);
    });

    it("holds a TEE's heartbeat slot for the interval, then gives it again", async () => {
      const s = await harness.create();
      const other = harness.another ? await harness.another(s) : s;
      const tee = id();
      expect(await s.take(tee, T0, TTL)).toBeUndefined();
      expect(await other.take(tee, T0 + TTL - 1, TTL)).toBe(T0);
      expect(await s.take(id(), T0 + 1, TTL)).toBeUndefined(); // another TEE has its own slot
      expect(await other.take(tee, T0 + TTL, TTL)).toBeUndefined();
      expect(await s.take(tee, T0 + TTL + 1, TTL)).toBe(T0 + TTL);
    });

    it("gives one slot to one of concurrent takers", async () => {
      const s = await harness.create();
      const other = harness.another ? await harness.another(s) : s;
      const tee = id();
      const taken = await Promise.all([s, other, s, other].map((h) => h.take(tee, T0, TTL)));
      expect(taken.filter((t) => t === undefined)).toHaveLength(1);
    });
  });
}
