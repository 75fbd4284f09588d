/**
 * The local Solana node as clients see it: @solana/kit's RPC and subscription clients over HTTP and
 * WebSocket, errors in the shapes real nodes answer with, blockhash expiry, late landing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  appendTransactionMessageInstructions,
  createSolanaRpc,
  createSolanaRpcSubscriptions,
  createTransactionMessage,
  getBase64EncodedWireTransaction,
  getSignatureFromTransaction,
  isSolanaError,
  pipe,
  sendAndConfirmTransactionFactory,
  setTransactionMessageFeePayerSigner,
  setTransactionMessageLifetimeUsingBlockhash,
  signTransactionMessageWithSigners,
  SOLANA_ERROR__JSON_RPC__SERVER_ERROR_SEND_TRANSACTION_PREFLIGHT_FAILURE,
  type Signature,
} from "@solana/kit";
import { getTransferCheckedInstruction } from "@solana-program/token";
import { startSolanaRpc, type SolanaRpc } from "./rpc.ts";
import { setupSolanaWorld, type SolanaWorld } from "./world.ts";

let node: SolanaRpc;
let world: SolanaWorld;
beforeAll(async () => {
  node = await startSolanaRpc({ slotMs: 0, blockhashValiditySlots: 3 });
  world = await setupSolanaWorld(node, { decimals: 6, payerBalance: 1_000_000n });
});
afterAll(async () => {
  await node?.stop();
});

/** A token transfer from the payer, fee paid by the first fee payer, signed by both. */
async function transfer(amount: bigint) {
  const message = pipe(
    createTransactionMessage({ version: 0 }),
    (m) => setTransactionMessageFeePayerSigner(world.feePayers[0].signer, m),
    (m) => setTransactionMessageLifetimeUsingBlockhash(node.latestBlockhash(), m),
    (m) =>
      appendTransactionMessageInstructions(
        [
          getTransferCheckedInstruction({
            source: world.payerTokenAccount,
            mint: world.mint,
            destination: world.payToTokenAccount,
            authority: world.payer.signer,
            amount,
            decimals: 6,
          }),
        ],
        m,
      ),
  );
  const tx = await signTransactionMessageWithSigners(message);
  return { wire: getBase64EncodedWireTransaction(tx), signature: getSignatureFromTransaction(tx), tx };
}

async function rawCall(method: string, params: unknown[]) {
  const res = await fetch(node.rpcUrl, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 7, method, params }),
  });
  return (await res.json()) as { result?: unknown; error?: { code: number; message: string; data?: { err?: unknown; logs?: string[] } } };
}

const rpc = () => createSolanaRpc(node.rpcUrl);
const balance = async (account: string) => BigInt((await rpc().getTokenAccountBalance(account as never).send()).value.amount);

describe("local Solana JSON-RPC", () => {
  it("identifies as Solana devnet and reads accounts as kit asks for them", async () => {
    expect(await rpc().getGenesisHash().send()).toBe("EtWTRABZaYq6iMfeYKouRu166VU2xqa1");
    expect(await rpc().getHealth().send()).toBe("ok");
    const mint = await rpc().getAccountInfo(world.mint, { encoding: "jsonParsed" }).send();
    expect(mint.value?.data).toMatchObject({ program: "spl-token", parsed: { type: "mint", info: { decimals: 6 } } });
    const accounts = await rpc().getMultipleAccounts([world.payerTokenAccount, world.payer.address], { encoding: "base64" }).send();
    expect(accounts.value[0]?.owner).toBe("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA");
    expect(accounts.value[1]).toBeNull(); // the payer holds no SOL, so it has no account at all
    expect(await balance(world.payerTokenAccount)).toBe(1_000_000n);
  });

  it("answers a failing preflight with -32002 and the transaction error in data.err", async () => {
    const { wire } = await transfer(2_000_000n); // more than the payer holds
    const raw = await rawCall("sendTransaction", [wire, { encoding: "base64" }]);
    expect(raw.error?.code).toBe(-32002);
    expect(raw.error?.message).toBe("Transaction simulation failed: Error processing Instruction 0: custom program error: 0x1");
    expect(raw.error?.data?.err).toEqual({ InstructionError: [0, { Custom: 1 }] });
    expect(raw.error?.data?.logs?.length).toBeGreaterThan(0);

    const viaKit = await rpc().sendTransaction(wire as never, { encoding: "base64" }).send().catch((e: unknown) => e);
    expect(isSolanaError(viaKit, SOLANA_ERROR__JSON_RPC__SERVER_ERROR_SEND_TRANSACTION_PREFLIGHT_FAILURE)).toBe(true);
  });

  it("lands a failing transaction sent with skipPreflight: error in its status, fee charged", async () => {
    const { wire, signature } = await transfer(3_000_000n);
    const feeBefore = (await rpc().getBalance(world.feePayers[0].address).send()).value;
    expect(await rpc().sendTransaction(wire as never, { encoding: "base64", skipPreflight: true }).send()).toBe(signature);
    const { value } = await rpc().getSignatureStatuses([signature]).send();
    expect(value[0]).toMatchObject({ err: { InstructionError: [0n, { Custom: 1n }] }, confirmationStatus: "finalized" });
    expect((await rpc().getBalance(world.feePayers[0].address).send()).value).toBe(feeBefore - 5000n * 2n);
    expect(await balance(world.payerTokenAccount)).toBe(1_000_000n);
  });

  it("confirms a transfer through signatureSubscribe (kit's sendAndConfirmTransaction)", async () => {
    const { tx, signature } = await transfer(1_000n);
    const rpcSubscriptions = createSolanaRpcSubscriptions(node.wsUrl);
    await sendAndConfirmTransactionFactory({ rpc: rpc(), rpcSubscriptions })(tx as never, { commitment: "confirmed" });
    expect(node.chain.status(signature)?.err).toBeNull();
    expect(await balance(world.payToTokenAccount)).toBe(1_000n);
  });

  it("refuses a duplicate in preflight and ignores it without preflight", async () => {
    const { wire, signature } = await transfer(2_000n);
    await rpc().sendTransaction(wire as never, { encoding: "base64" }).send();
    const count = node.chain.transactionCount;
    const raw = await rawCall("sendTransaction", [wire, { encoding: "base64" }]);
    expect(raw.error).toMatchObject({ code: -32002, data: { err: "AlreadyProcessed" } });
    expect(await rpc().sendTransaction(wire as never, { encoding: "base64", skipPreflight: true }).send()).toBe(signature);
    expect(node.chain.transactionCount).toBe(count);
    expect(await balance(world.payToTokenAccount)).toBe(3_000n);
  });

  it("keeps a blockhash valid for its window of blocks, then answers BlockhashNotFound", async () => {
    const { wire, signature } = await transfer(4_000n);
    const { blockhash } = node.latestBlockhash();
    for (let i = 0; i < 3; i++) node.advanceSlot();
    expect((await rpc().isBlockhashValid(blockhash).send()).value).toBe(true);
    node.advanceSlot();
    expect((await rpc().isBlockhashValid(blockhash).send()).value).toBe(false);

    const sim = await rawCall("simulateTransaction", [wire, { encoding: "base64" }]);
    expect((sim.result as { value: { err: unknown } }).value.err).toBe("BlockhashNotFound");
    const replaced = await rawCall("simulateTransaction", [wire, { encoding: "base64", replaceRecentBlockhash: true }]);
    expect((replaced.result as { value: { err: unknown; replacementBlockhash: unknown } }).value).toMatchObject({ err: null, replacementBlockhash: { blockhash: node.latestBlockhash().blockhash } });
    const sent = await rawCall("sendTransaction", [wire, { encoding: "base64" }]);
    expect(sent.error).toMatchObject({ code: -32002, message: "Transaction simulation failed: Blockhash not found", data: { err: "BlockhashNotFound" } });
    // Without preflight the node takes it, but it never lands.
    await rpc().sendTransaction(wire as never, { encoding: "base64", skipPreflight: true }).send();
    expect((await rpc().getSignatureStatuses([signature as Signature]).send()).value[0]).toBeNull();
  });

  it("holds sent transactions while landing is paused and lands them on resume", async () => {
    const { wire, signature } = await transfer(5_000n);
    node.pauseLanding();
    await rpc().sendTransaction(wire as never, { encoding: "base64" }).send();
    expect((await rpc().getSignatureStatuses([signature]).send()).value[0]).toBeNull();
    node.resumeLanding();
    expect((await rpc().getSignatureStatuses([signature]).send()).value[0]).toMatchObject({ err: null });
    const tx = await rpc().getTransaction(signature, { maxSupportedTransactionVersion: 0, encoding: "json" }).send();
    expect(tx?.meta?.err).toBeNull();
    expect(tx?.transaction.signatures[0]).toBe(signature);
  });

  it("answers unknown methods and bad params with JSON-RPC errors", async () => {
    expect((await rawCall("noSuchMethod", [])).error?.code).toBe(-32601);
    expect((await rawCall("getBalance", ["not an address"])).error?.code).toBe(-32602);
    expect((await rawCall("sendTransaction", ["AAAA", { encoding: "base64" }])).error?.code).toBe(-32602);
  });
});
