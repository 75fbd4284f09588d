/** Waiting, within a bound, for a sent transaction to land. */
import type { SvmChainClient } from "./chain.ts";

export type LandingOutcome =
  | { kind: "landed"; err: unknown }
  /** Not found and its blockhash expired: it can never land. */
  | { kind: "expired" }
  /** Neither within the bound: the caller answers `settlement_pending`. */
  | { kind: "timeout" };

export interface LandingWait {
  signature: string;
  /** The signed bytes, re-sent unchanged (never re-signed) while not found and the blockhash is valid. */
  wireBase64: string;
  blockhash: string;
  timeoutMs: number;
  pollMs: number;
  resendMs: number;
  /** Re-send at the first miss (reconciling an earlier broadcast) instead of after `resendMs`. */
  resendAtOnce: boolean;
}

const LANDED = new Set(["confirmed", "finalized"]);

export async function awaitLanding(chain: SvmChainClient, w: LandingWait): Promise<LandingOutcome> {
  const deadline = Date.now() + w.timeoutMs;
  let lastSend = w.resendAtOnce ? -Infinity : Date.now();
  for (;;) {
    try {
      const status = await chain.status(w.signature);
      if (status && LANDED.has(status.confirmationStatus ?? "")) return { kind: "landed", err: status.err };
      if (!status && !(await chain.isBlockhashValid(w.blockhash))) {
        // Look once more: it may have landed between the two reads.
        const again = await chain.status(w.signature);
        if (!again) return { kind: "expired" };
      } else if (!status && Date.now() - lastSend >= w.resendMs) {
        lastSend = Date.now();
        await chain.send(w.wireBase64);
      }
    } catch {
      // An RPC hiccup is not an outcome: keep trying until the bound.
    }
    if (Date.now() >= deadline) return { kind: "timeout" };
    await new Promise((r) => setTimeout(r, Math.min(w.pollMs, Math.max(0, deadline - Date.now()))));
  }
}
