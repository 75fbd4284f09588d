/**
 * A local Solana world for the Solana suites: litesvm behind the JSON-RPC front, a mint, a payer
 * with tokens and no SOL, a payee, fee payers, a real settlement ledger, and the mechanism, each
 * started with one call. Also builds payment transactions by hand for the rejection cases.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AccountRole,
  appendTransactionMessageInstructions,
  createNoopSigner,
  createSolanaRpc,
  createTransactionMessage,
  getBase64EncodedWireTransaction,
  getUtf8Encoder,
  partiallySignTransactionMessageWithSigners,
  pipe,
  setTransactionMessageFeePayer,
  setTransactionMessageLifetimeUsingBlockhash,
  type Address,
  type Instruction,
  type KeyPairSigner,
  type Transaction,
} from "@solana/kit";
import { getSetComputeUnitLimitInstruction, getSetComputeUnitPriceInstruction } from "@solana-program/compute-budget";
import { findAssociatedTokenPda, getTransferCheckedInstruction, TOKEN_PROGRAM_ADDRESS } from "@solana-program/token";
import { NetworkRegistry, parsePaymentBody, type NetworkInfo, type PaymentMechanism, type PaymentRequest } from "@facilitator/core";
import { setupSolanaWorld, startSolanaRpc, type SolanaRpc, type SolanaRpcOptions, type SolanaWorld } from "@facilitator/devnet";
import { LmdbLedger } from "@facilitator/ledger";
import { createSvmExactMechanism, type SvmExactMechanismOptions } from "@facilitator/svm";

export const DEVNET_CAIP2 = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1" as const;
export const MEMO_PROGRAM = "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr" as Address;

export interface SolanaFixture {
  rpc: SolanaRpc;
  world: SolanaWorld;
  network: NetworkInfo;
  registry: NetworkRegistry;
  ledger: LmdbLedger;
  mechanism: PaymentMechanism;
  stop(): Promise<void>;
}

export async function startSolanaFixture(
  opts: { rpc?: SolanaRpcOptions; feePayerCount?: number; mechanism?: Partial<SvmExactMechanismOptions> } = {},
): Promise<SolanaFixture> {
  const rpc = await startSolanaRpc(opts.rpc);
  const world = await setupSolanaWorld(rpc, { decimals: 6, feePayerCount: opts.feePayerCount });
  const dir = await mkdtemp(join(tmpdir(), "svm-ledger-"));
  const ledger = new LmdbLedger(dir);
  // Both Solana entries pointed at the local node and mint, exactly as configuration overrides them.
  const local = { rpcUrl: rpc.rpcUrl, asset: { address: world.mint } };
  const registry = new NetworkRegistry([
    { name: "solana-devnet", ...local },
    { name: "solana", ...local },
  ]);
  const network = registry.get("solana-devnet");
  const mechanism = await createSvmExactMechanism({
    networks: [network, registry.get("solana")],
    feePayers: world.feePayers.map((f) => f.secretKey),
    ledger,
    confirmTimeoutMs: 3_000,
    pollIntervalMs: 20,
    resendIntervalMs: 200,
    ...opts.mechanism,
  });
  return {
    rpc,
    world,
    network,
    registry,
    ledger,
    mechanism,
    async stop() {
      await rpc.stop();
      await ledger.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export function requirementsV1(fx: SolanaFixture, amount: bigint, extra: Record<string, unknown> = {}, network = "solana-devnet") {
  return {
    scheme: "exact",
    network,
    maxAmountRequired: amount.toString(),
    asset: fx.world.mint,
    payTo: fx.world.payTo,
    resource: "http://127.0.0.1/paid",
    description: "a paid resource",
    mimeType: "application/json",
    maxTimeoutSeconds: 60,
    extra: { feePayer: fx.world.feePayers[0].address, ...extra },
  };
}

export function requirementsV2(fx: SolanaFixture, amount: bigint, extra: Record<string, unknown> = {}) {
  return {
    scheme: "exact",
    network: DEVNET_CAIP2,
    amount: amount.toString(),
    asset: fx.world.mint,
    payTo: fx.world.payTo,
    maxTimeoutSeconds: 60,
    extra: { feePayer: fx.world.feePayers[0].address, ...extra },
  };
}

/** What the server does with a facilitator body: parse and normalise it with core. */
export function toRequest(fx: SolanaFixture, body: unknown): PaymentRequest {
  const parsed = parsePaymentBody(body, fx.registry);
  if (!parsed.ok) throw new Error(`body rejected: ${parsed.reason}: ${parsed.message}`);
  return parsed.request;
}

/** A v1 facilitator body for a base64 transaction of our own making. */
export function v1Request(fx: SolanaFixture, transaction: string, requirements = requirementsV1(fx, 10_000n)): PaymentRequest {
  return toRequest(fx, {
    x402Version: 1,
    paymentPayload: { x402Version: 1, scheme: "exact", network: "solana-devnet", payload: { transaction } },
    paymentRequirements: requirements,
  });
}

export async function tokenBalance(fx: SolanaFixture, tokenAccount: Address): Promise<bigint> {
  const { value } = await createSolanaRpc(fx.rpc.rpcUrl).getTokenAccountBalance(tokenAccount).send();
  return BigInt(value.amount);
}

export async function solBalance(fx: SolanaFixture, address: Address): Promise<bigint> {
  const { value } = await createSolanaRpc(fx.rpc.rpcUrl).getBalance(address).send();
  return BigInt(value);
}

/** Everything whose change would mean something was broadcast. */
export async function chainSnapshot(fx: SolanaFixture) {
  return {
    transactions: fx.rpc.chain.transactionCount,
    payer: await tokenBalance(fx, fx.world.payerTokenAccount),
    payee: await tokenBalance(fx, fx.world.payToTokenAccount),
    feePayerSol: await solBalance(fx, fx.world.feePayers[0].address),
  };
}

export interface PaymentTxOptions {
  feePayer?: Address;
  authority?: KeyPairSigner | Address;
  source?: Address;
  mint?: Address;
  destination?: Address;
  amount?: bigint;
  unitLimit?: number;
  microLamportsPerUnit?: bigint;
  memo?: string;
  /** Instructions appended after the transfer (and memo). */
  extra?: Instruction[];
  /** Instructions placed before everything else. */
  prefix?: Instruction[];
  /** Leave the payer's signature out. */
  unsigned?: boolean;
}

/** A payment transaction shaped like the official clients' ones, with any part replaceable. */
export async function buildPaymentTx(fx: SolanaFixture, o: PaymentTxOptions = {}): Promise<string> {
  const w = fx.world;
  const feePayer = o.feePayer ?? w.feePayers[0].address;
  const authority = o.authority ?? w.payer.signer;
  const instructions: Instruction[] = [
    ...(o.prefix ?? []),
    getSetComputeUnitLimitInstruction({ units: o.unitLimit ?? 20_000 }),
    getSetComputeUnitPriceInstruction({ microLamports: o.microLamportsPerUnit ?? 1n }),
    getTransferCheckedInstruction({
      source: o.source ?? w.payerTokenAccount,
      mint: o.mint ?? w.mint,
      destination: o.destination ?? w.payToTokenAccount,
      authority: typeof authority === "string" ? createNoopSigner(authority) : authority,
      amount: o.amount ?? 10_000n,
      decimals: w.decimals,
    }),
    ...(o.memo === undefined ? [] : [memoInstruction(o.memo)]),
    ...(o.extra ?? []),
  ];
  const message = pipe(
    createTransactionMessage({ version: 0 }),
    (m) => setTransactionMessageFeePayer(feePayer, m),
    (m) => setTransactionMessageLifetimeUsingBlockhash(fx.rpc.latestBlockhash(), m),
    (m) => appendTransactionMessageInstructions(instructions, m),
  );
  const signed = await partiallySignTransactionMessageWithSigners(message);
  const tx: Transaction = o.unsigned
    ? { ...signed, signatures: { ...signed.signatures, [w.payer.address]: null } }
    : signed;
  return getBase64EncodedWireTransaction(tx);
}

export function memoInstruction(text: string, accounts: Address[] = []): Instruction {
  return {
    programAddress: MEMO_PROGRAM,
    accounts: accounts.map((address) => ({ address, role: AccountRole.READONLY })),
    data: new Uint8Array(getUtf8Encoder().encode(text)),
  };
}

export async function ataOf(owner: Address, mint: Address): Promise<Address> {
  return (await findAssociatedTokenPda({ owner, mint, tokenProgram: TOKEN_PROGRAM_ADDRESS }))[0];
}
