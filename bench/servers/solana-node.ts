/** Child process: the local Solana node (litesvm behind its JSON-RPC front) with the bench's accounts. */
import { setupSolanaWorld, startSolanaRpc } from "@facilitator/devnet";
import { childSpec, onStop, reportFailure, reportReady } from "../lib/child.ts";
import type { SolanaNodeInfo, SolanaNodeSpec } from "../lib/spec.ts";

async function main(): Promise<void> {
  const spec = childSpec<SolanaNodeSpec>();
  const rpc = await startSolanaRpc();
  const world = await setupSolanaWorld(rpc, { decimals: 6, payerBalance: BigInt(spec.payerBalance), feePayerCount: spec.feePayerCount });
  onStop(() => rpc.stop());
  const key = (k: { address: SolanaNodeInfo["mint"]; secretKey: string }) => ({ address: k.address, secretKey: k.secretKey });
  reportReady({
    rpcUrl: rpc.rpcUrl,
    mint: world.mint,
    decimals: world.decimals,
    payer: key(world.payer),
    payTo: world.payTo,
    payToTokenAccount: world.payToTokenAccount,
    feePayers: world.feePayers.map(key),
  } satisfies SolanaNodeInfo);
}

main().catch(reportFailure);
