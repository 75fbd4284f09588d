/** Test fixtures of the payments record: an observation of a settled payment, and its stored record. */
import { observedRecord, type SettleObservation } from "../record.ts";
import type { PaymentRecord } from "../types.ts";

export const T0 = Date.UTC(2026, 11, 7, 12);
export const PAYEE = "0x00000000000000000000000000000000000000bb";

/** A settled EVM payment of 1000 units to PAYEE, answered at T0; `over` changes any field. */
export const observation = (over: Partial<SettleObservation> = {}): SettleObservation => ({
  network: "eip155:84532", scheme: "exact", payTo: "0x00000000000000000000000000000000000000Bb", asset: "0x00000000000000000000000000000000000000Cc",
  payload: { signature: "0xsig", authorization: { from: "0xA", nonce: "0x01", value: "1000" } },
  requestedAmount: "1000", success: true, payer: "0x00000000000000000000000000000000000000Aa", transaction: "0xtx", amount: "1000",
  latencyMs: 120, now: T0, ...over,
});

/** `o`'s record as a store would hold it at `version`. */
export const stored = (o: SettleObservation, version = 1): PaymentRecord => ({ ...observedRecord(o)!, version });
