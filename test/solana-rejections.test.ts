/**
 * Transactions that break one rule each, built by hand with @solana/kit: verify and settle reject
 * each with its own reason, and nothing reaches the chain (no transaction, no balance moves).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccountRole, type Address, type Instruction } from "@solana/kit";
import { Reason } from "@facilitator/core";
import {
  ataOf,
  buildPaymentTx,
  chainSnapshot,
  memoInstruction,
  requirementsV1,
  startSolanaFixture,
  v1Request,
  type PaymentTxOptions,
  type SolanaFixture,
} from "./helpers/solana.ts";

let fx: SolanaFixture;
beforeAll(async () => {
  fx = await startSolanaFixture();
});
afterAll(async () => {
  await fx?.stop();
});

const SYSTEM_PROGRAM = "11111111111111111111111111111111" as Address;
const ATA_PROGRAM = "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL" as Address;
const TOKEN_PROGRAM = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA" as Address;
const OTHER_MINT = "So11111111111111111111111111111111111111112" as Address;

/** Each case: how the transaction (or the requirements) differ from a valid payment of 10,000 units. */
const cases: { name: string; reason: string; tx: () => Promise<PaymentTxOptions>; extra?: Record<string, unknown> }[] = [
  {
    name: "fee payer among an instruction's accounts",
    reason: Reason.svmFeePayerInInstruction,
    tx: async () => ({ extra: [memoInstruction("hello", [fx.world.feePayers[0].address])] }),
  },
  {
    name: "fee payer as the transfer authority",
    reason: Reason.svmFeePayerTransferring,
    tx: async () => ({
      authority: fx.world.feePayers[0].address,
      source: await ataOf(fx.world.feePayers[0].address, fx.world.mint),
    }),
  },
  {
    name: "compute unit price above 5 lamports per unit",
    reason: Reason.svmComputePrice,
    tx: async () => ({ microLamportsPerUnit: 5_000_001n }),
  },
  { name: "wrong mint", reason: Reason.svmMintMismatch, tx: async () => ({ mint: OTHER_MINT }) },
  {
    name: "destination is not the payee's token account",
    reason: Reason.svmRecipientMismatch,
    tx: async () => ({ destination: await ataOf(fx.world.mintAuthority.address, fx.world.mint) }),
  },
  { name: "amount lower than required", reason: Reason.svmAmountMismatch, tx: async () => ({ amount: 9_999n }) },
  { name: "amount higher than required", reason: Reason.svmAmountMismatch, tx: async () => ({ amount: 10_001n }) },
  {
    name: "an unknown extra instruction",
    reason: Reason.svmInstructions,
    tx: async () => ({ extra: [systemTransfer(fx.world.payer.address, fx.world.payTo)] }),
  },
  {
    name: "a CreateATA instruction paid by the fee payer",
    reason: Reason.svmCreateAta,
    tx: async () => ({ prefix: [await createAtaInstruction(fx.world.feePayers[0].address, fx.world.payTo, fx.world.mint)] }),
  },
  { name: "missing payer signature", reason: Reason.svmSignature, tx: async () => ({ unsigned: true }) },
  {
    name: "memo differs from extra.memo",
    reason: Reason.svmMemoMismatch,
    tx: async () => ({ memo: "order-43" }),
    extra: { memo: "order-42" },
  },
];

describe("rejected Solana payments", () => {
  it.each(cases)("$name -> $reason, nothing broadcast", async (c) => {
    const before = await chainSnapshot(fx);
    const request = v1Request(fx, await buildPaymentTx(fx, await c.tx()), requirementsV1(fx, 10_000n, c.extra));

    const verified = await fx.mechanism.verify(request);
    expect(verified).toMatchObject({ isValid: false, reason: c.reason });
    const settled = await fx.mechanism.settle(request);
    expect(settled).toMatchObject({ success: false, reason: c.reason, transaction: "" });
    expect((settled as { message: string }).message.length).toBeGreaterThan(10);

    expect(await chainSnapshot(fx)).toEqual(before);
    expect(await fx.ledger.countUnconfirmed()).toBe(0);
  });

  it("an expired blockhash -> blockhash expired, nothing broadcast", async () => {
    const request = v1Request(fx, await buildPaymentTx(fx));
    expect(await fx.mechanism.verify(request)).toEqual({ isValid: true, payer: fx.world.payer.address });
    fx.rpc.expireBlockhashes();
    const before = await chainSnapshot(fx);

    expect(await fx.mechanism.verify(request)).toMatchObject({ isValid: false, reason: Reason.svmBlockhashExpired });
    expect(await fx.mechanism.settle(request)).toMatchObject({ success: false, reason: Reason.svmBlockhashExpired, transaction: "" });
    expect(await chainSnapshot(fx)).toEqual(before);
    // The claim was released: nothing in the ledger says this payment is in flight.
    expect(await fx.ledger.countUnconfirmed()).toBe(0);
  });

  it("a payment the payer cannot cover -> insufficient_funds, nothing broadcast", async () => {
    const before = await chainSnapshot(fx);
    const amount = before.payer + 1n;
    const request = v1Request(fx, await buildPaymentTx(fx, { amount }), requirementsV1(fx, amount));
    expect(await fx.mechanism.verify(request)).toMatchObject({ isValid: false, reason: Reason.insufficientFunds });
    expect(await fx.mechanism.settle(request)).toMatchObject({ success: false, reason: Reason.insufficientFunds });
    expect(await chainSnapshot(fx)).toEqual(before);
  });

  it("a fee payer that is not the facilitator's -> fee payer mismatch", async () => {
    const request = v1Request(fx, await buildPaymentTx(fx, { feePayer: fx.world.mintAuthority.address }));
    expect(await fx.mechanism.verify(request)).toMatchObject({ isValid: false, reason: Reason.svmFeePayerMismatch });
  });

  it("a payload that is not a transaction -> invalid_payload", async () => {
    const request = v1Request(fx, "bm90IGEgdHJhbnNhY3Rpb24=");
    expect(await fx.mechanism.settle(request)).toMatchObject({ success: false, reason: Reason.invalidPayload, transaction: "" });
  });
});

function systemTransfer(from: Address, to: Address): Instruction {
  const data = new Uint8Array(12);
  const view = new DataView(data.buffer);
  view.setUint32(0, 2, true); // SystemInstruction::Transfer
  view.setBigUint64(4, 1_000n, true);
  return {
    programAddress: SYSTEM_PROGRAM,
    accounts: [
      { address: from, role: AccountRole.WRITABLE_SIGNER },
      { address: to, role: AccountRole.WRITABLE },
    ],
    data,
  };
}

async function createAtaInstruction(funder: Address, owner: Address, mint: Address): Promise<Instruction> {
  return {
    programAddress: ATA_PROGRAM,
    accounts: [
      { address: funder, role: AccountRole.WRITABLE_SIGNER },
      { address: await ataOf(owner, mint), role: AccountRole.WRITABLE },
      { address: owner, role: AccountRole.READONLY },
      { address: mint, role: AccountRole.READONLY },
      { address: SYSTEM_PROGRAM, role: AccountRole.READONLY },
      { address: TOKEN_PROGRAM, role: AccountRole.READONLY },
    ],
    data: new Uint8Array([1]), // CreateIdempotent
  };
}
