/**
 * `setupSolanaWorld`: the accounts an x402 Solana payment needs, created by real transactions on a
 * local node: a USDC-like mint, a payer holding tokens and no SOL, a payee whose token account
 * exists, and fee payers (the facilitator's keys) holding SOL.
 */
import {
  appendTransactionMessageInstructions,
  createKeyPairSignerFromPrivateKeyBytes,
  createTransactionMessage,
  getAddressEncoder,
  getBase58Decoder,
  getTransactionEncoder,
  pipe,
  setTransactionMessageFeePayerSigner,
  setTransactionMessageLifetimeUsingBlockhash,
  signTransactionMessageWithSigners,
  type Address,
  type Instruction,
  type KeyPairSigner,
} from "@solana/kit";
import { getCreateAccountInstruction } from "@solana-program/system";
import {
  findAssociatedTokenPda,
  getCreateAssociatedTokenIdempotentInstructionAsync,
  getInitializeMint2Instruction,
  getMintToInstruction,
  TOKEN_PROGRAM_ADDRESS,
} from "@solana-program/token";
import type { SolanaRpc } from "./rpc.ts";

const LAMPORTS_PER_SOL = 1_000_000_000n;
const MINT_SIZE = 82n;

export interface SolanaKeypair {
  address: Address;
  /** 64 bytes (seed, then public key) in base58: the form of `SVM_PRIVATE_KEY`, Phantom exports and `x402`'s `createSigner`. */
  secretKey: string;
  signer: KeyPairSigner;
}

export interface SolanaWorldOptions {
  /** Decimals of the mint. Default 6 (USDC). */
  decimals?: number;
  /** Base units the payer starts with. Default 1,000 tokens. */
  payerBalance?: bigint;
  /** How many facilitator fee-payer keys to create. Default 1. */
  feePayerCount?: number;
  /** Lamports each fee payer starts with. Default 10 SOL. */
  feePayerLamports?: bigint;
}

export interface SolanaWorld {
  mint: Address;
  decimals: number;
  tokenProgram: Address;
  mintAuthority: SolanaKeypair;
  /** Holds `payerBalance` tokens and no SOL at all. */
  payer: SolanaKeypair;
  payerTokenAccount: Address;
  /** The payee wallet (`payTo`); its associated token account exists. */
  payee: SolanaKeypair;
  payTo: Address;
  payToTokenAccount: Address;
  feePayers: SolanaKeypair[];
}

export async function setupSolanaWorld(rpc: SolanaRpc, opts: SolanaWorldOptions = {}): Promise<SolanaWorld> {
  const decimals = opts.decimals ?? 6;
  const tokenProgram = TOKEN_PROGRAM_ADDRESS;
  const [mintAuthority, mintKey, payer, payee] = await Promise.all([newKeypair(), newKeypair(), newKeypair(), newKeypair()]);
  const feePayers = await Promise.all(Array.from({ length: opts.feePayerCount ?? 1 }, () => newKeypair()));

  rpc.chain.airdrop(mintAuthority.address, 100n * LAMPORTS_PER_SOL);
  for (const f of feePayers) rpc.chain.airdrop(f.address, opts.feePayerLamports ?? 10n * LAMPORTS_PER_SOL);

  const mint = mintKey.address;
  await submit(rpc, mintAuthority.signer, [
    getCreateAccountInstruction({
      payer: mintAuthority.signer,
      newAccount: mintKey.signer,
      lamports: rpc.svm.minimumBalanceForRentExemption(MINT_SIZE),
      space: MINT_SIZE,
      programAddress: tokenProgram,
    }),
    getInitializeMint2Instruction({ mint, decimals, mintAuthority: mintAuthority.address }),
  ]);

  const ata = async (owner: Address) => (await findAssociatedTokenPda({ owner, mint, tokenProgram }))[0];
  const [payerTokenAccount, payToTokenAccount] = await Promise.all([ata(payer.address), ata(payee.address)]);
  await submit(rpc, mintAuthority.signer, [
    await getCreateAssociatedTokenIdempotentInstructionAsync({ payer: mintAuthority.signer, owner: payer.address, mint }),
    await getCreateAssociatedTokenIdempotentInstructionAsync({ payer: mintAuthority.signer, owner: payee.address, mint }),
    getMintToInstruction({
      mint,
      token: payerTokenAccount,
      mintAuthority: mintAuthority.signer,
      amount: opts.payerBalance ?? 1000n * 10n ** BigInt(decimals),
    }),
  ]);

  return {
    mint,
    decimals,
    tokenProgram,
    mintAuthority,
    payer,
    payerTokenAccount,
    payee,
    payTo: payee.address,
    payToTokenAccount,
    feePayers,
  };
}

/** A fresh ed25519 keypair whose secret can be handed to clients as base58. */
export async function newKeypair(): Promise<SolanaKeypair> {
  const seed = crypto.getRandomValues(new Uint8Array(32));
  const signer = await createKeyPairSignerFromPrivateKeyBytes(seed);
  const secret = new Uint8Array(64);
  secret.set(seed);
  secret.set(getAddressEncoder().encode(signer.address), 32);
  return { address: signer.address, secretKey: getBase58Decoder().decode(secret), signer };
}

/** Signs and sends setup instructions, paid by `feePayer`; throws unless they land without error. */
async function submit(rpc: SolanaRpc, feePayer: KeyPairSigner, instructions: Instruction[]): Promise<string> {
  const message = pipe(
    createTransactionMessage({ version: 0 }),
    (m) => setTransactionMessageFeePayerSigner(feePayer, m),
    (m) => setTransactionMessageLifetimeUsingBlockhash(rpc.latestBlockhash(), m),
    (m) => appendTransactionMessageInstructions(instructions, m),
  );
  const tx = await signTransactionMessageWithSigners(message);
  const signature = rpc.chain.send(new Uint8Array(getTransactionEncoder().encode(tx)));
  const landed = rpc.chain.status(signature);
  if (!landed || landed.err !== null) {
    throw new Error(`setup transaction ${signature} did not land cleanly: ${JSON.stringify(landed?.err ?? "not landed")}`);
  }
  return signature;
}
