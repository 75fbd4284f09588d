/** The Solana RPC calls the mechanism makes, each bounded by a timeout. I/O only, no decisions. */
import {
  createSolanaRpc,
  type Base64EncodedWireTransaction,
  type Blockhash,
  type Signature,
} from "@solana/kit";

export interface SignatureState {
  err: unknown;
  confirmationStatus: "processed" | "confirmed" | "finalized" | null;
}

export interface SvmChainClient {
  /** Simulates without signature checks (the fee payer has not signed yet) against the transaction's own blockhash. */
  simulate(wireBase64: string): Promise<{ err: unknown; logs: readonly string[] | null }>;
  isBlockhashValid(blockhash: string): Promise<boolean>;
  /** Sends as is; the mechanism has simulated already, and a re-send of landed bytes must not fail preflight. */
  send(wireBase64: string): Promise<void>;
  status(signature: string): Promise<SignatureState | null>;
}

export function createChainClient(rpcUrl: string, timeoutMs: number): SvmChainClient {
  const rpc = createSolanaRpc(rpcUrl);
  const opts = () => ({ abortSignal: AbortSignal.timeout(timeoutMs) });
  return {
    async simulate(wireBase64) {
      const { value } = await rpc
        .simulateTransaction(wireBase64 as Base64EncodedWireTransaction, {
          encoding: "base64",
          sigVerify: false,
          replaceRecentBlockhash: false,
          commitment: "confirmed",
        })
        .send(opts());
      return { err: value.err, logs: value.logs };
    },
    async isBlockhashValid(blockhash) {
      const { value } = await rpc.isBlockhashValid(blockhash as Blockhash, { commitment: "confirmed" }).send(opts());
      return value;
    },
    async send(wireBase64) {
      await rpc
        .sendTransaction(wireBase64 as Base64EncodedWireTransaction, { encoding: "base64", skipPreflight: true, maxRetries: 0n })
        .send(opts());
    },
    async status(signature) {
      const { value } = await rpc.getSignatureStatuses([signature as Signature], { searchTransactionHistory: true }).send(opts());
      const s = value[0];
      return s ? { err: s.err, confirmationStatus: s.confirmationStatus } : null;
    },
  };
}
