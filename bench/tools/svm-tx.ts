/** A payment transaction shaped like the official @x402/svm client's, without a chain (for cpu-costs.ts). */
import { getSetComputeUnitLimitInstruction, getSetComputeUnitPriceInstruction } from "@solana-program/compute-budget";
import { findAssociatedTokenPda, getTransferCheckedInstruction, TOKEN_PROGRAM_ADDRESS } from "@solana-program/token";
import {
  appendTransactionMessageInstructions,
  createTransactionMessage,
  getBase64EncodedWireTransaction,
  partiallySignTransactionMessageWithSigners,
  pipe,
  setTransactionMessageFeePayer,
  setTransactionMessageLifetimeUsingBlockhash,
  type Address,
  type Blockhash,
  type KeyPairSigner,
} from "@solana/kit";

export async function buildTransferTransaction(o: { payer: KeyPairSigner; feePayer: Address; payTo: Address; mint: Address }): Promise<string> {
  const [source] = await findAssociatedTokenPda({ owner: o.payer.address, mint: o.mint, tokenProgram: TOKEN_PROGRAM_ADDRESS });
  const [destination] = await findAssociatedTokenPda({ owner: o.payTo, mint: o.mint, tokenProgram: TOKEN_PROGRAM_ADDRESS });
  const message = pipe(
    createTransactionMessage({ version: 0 }),
    (m) => setTransactionMessageFeePayer(o.feePayer, m),
    (m) => setTransactionMessageLifetimeUsingBlockhash({ blockhash: "EtWTRABZaYq6iMfeYKouRu166VU2xqa1EtWTRABZaYq6" as Blockhash, lastValidBlockHeight: 1000n }, m),
    (m) =>
      appendTransactionMessageInstructions(
        [
          getSetComputeUnitLimitInstruction({ units: 20_000 }),
          getSetComputeUnitPriceInstruction({ microLamports: 1n }),
          getTransferCheckedInstruction({ source, mint: o.mint, destination, authority: o.payer, amount: 1000n, decimals: 6 }),
        ],
        m,
      ),
  );
  return getBase64EncodedWireTransaction(await partiallySignTransactionMessageWithSigners(message));
}
