import { describe, expect, it } from "vitest";
import {
  AccountRole,
  getAddressDecoder,
  appendTransactionMessageInstructions,
  createNoopSigner,
  createTransactionMessage,
  getBase64EncodedWireTransaction,
  partiallySignTransactionMessageWithSigners,
  pipe,
  setTransactionMessageFeePayer,
  setTransactionMessageLifetimeUsingBlockhash,
  type Address,
  type Blockhash,
} from "@solana/kit";
import { NetworkRegistry, Reason } from "@facilitator/core";
import {
  ASSOCIATED_TOKEN_PROGRAM,
  COMPUTE_BUDGET_PROGRAM,
  DEFAULT_MAX_COMPUTE_UNITS,
  DEFAULT_MAX_PRIORITY_FEE_LAMPORTS,
  LIGHTHOUSE_PROGRAM,
  MEMO_PROGRAM,
  TOKEN_2022_PROGRAM,
  TOKEN_PROGRAM,
} from "./constants.ts";
import { simulationRejection } from "./mechanism.ts";
import { checkPaymentPolicy, checkPaymentRules, priorityFeeLamports, type PaymentExpectations, type PaymentPolicy, type TransferDetails } from "./rules.ts";
import { decodePaymentTransaction, type PaymentInstruction, type PaymentTransaction } from "./transaction.ts";

// Distinct, well-formed addresses; the rules only compare them.
const addr = (n: number) => getAddressDecoder().decode(new Uint8Array(32).fill(n));
const FEE_PAYER = addr(1);
const OTHER_FEE_PAYER = addr(2);
const PAYER = addr(3);
const SOURCE = addr(4);
const MINT = addr(5);
const DEST = addr(6);
const DEST_2022 = addr(7);
const FEE_PAYER_ATA = addr(8);
const STRANGER = addr(9);
const EXTRA_MINT = addr(10);

const u32 = (tag: number, v: number) => {
  const b = new Uint8Array(5);
  b[0] = tag;
  new DataView(b.buffer).setUint32(1, v, true);
  return b;
};
const u64 = (tag: number, v: bigint) => {
  const b = new Uint8Array(9);
  b[0] = tag;
  new DataView(b.buffer).setBigUint64(1, v, true);
  return b;
};
const transferData = (amount: bigint, decimals = 6) => {
  const b = new Uint8Array(10);
  b.set(u64(12, amount));
  b[9] = decimals;
  return b;
};
const ix = (programAddress: Address, accounts: Address[] = [], data = new Uint8Array()): PaymentInstruction => ({ programAddress, accounts, data });

const limit = (units = 20_000) => ix(COMPUTE_BUDGET_PROGRAM, [], u32(2, units));
const price = (micro = 1n) => ix(COMPUTE_BUDGET_PROGRAM, [], u64(3, micro));
const transfer = (o: Partial<{ program: Address; source: Address; mint: Address; dest: Address; authority: Address; amount: bigint }> = {}) =>
  ix(o.program ?? TOKEN_PROGRAM, [o.source ?? SOURCE, o.mint ?? MINT, o.dest ?? DEST, o.authority ?? PAYER], transferData(o.amount ?? 1000n));
const memo = (text: string, accounts: Address[] = []) => ix(MEMO_PROGRAM, accounts, new TextEncoder().encode(text));

function tx(instructions: PaymentInstruction[], signers: Address[] = [FEE_PAYER, PAYER]): PaymentTransaction {
  return {
    feePayer: signers[0],
    signers,
    staticAccounts: signers,
    instructions,
    blockhash: "11111111111111111111111111111111",
    messageBytes: new Uint8Array(),
    signatures: {},
  };
}

const expect_: PaymentExpectations = {
  feePayers: new Set([FEE_PAYER, OTHER_FEE_PAYER]),
  asset: MINT,
  amount: 1000n,
  destinations: { [TOKEN_PROGRAM]: DEST, [TOKEN_2022_PROGRAM]: DEST_2022 },
  feePayerTokenAccounts: { [TOKEN_PROGRAM]: FEE_PAYER_ATA, [TOKEN_2022_PROGRAM]: FEE_PAYER_ATA },
};

const valid = [limit(), price(), transfer()];

describe("checkPaymentRules", () => {
  const cases: { name: string; tx: PaymentTransaction; expect?: Partial<PaymentExpectations>; reason?: string }[] = [
    { name: "x402@1.2.0 shape: limit, price, transfer", tx: tx(valid) },
    { name: "@x402/svm shape: with a random memo", tx: tx([...valid, memo("0af3c1")]) },
    { name: "Lighthouse assertions after the transfer", tx: tx([...valid, ix(LIGHTHOUSE_PROGRAM, [PAYER]), ix(LIGHTHOUSE_PROGRAM)]) },
    { name: "seven instructions", tx: tx([...valid, memo("a"), memo("b"), memo("c"), memo("d")]) },
    { name: "Token-2022 transfer to the Token-2022 account", tx: tx([limit(), price(), transfer({ program: TOKEN_2022_PROGRAM, dest: DEST_2022 })]) },
    { name: "price exactly 5 lamports per unit", tx: tx([limit(), price(5_000_000n), transfer()]) },
    { name: "the second fee payer", tx: tx(valid, [OTHER_FEE_PAYER, PAYER]) },
    { name: "extra.feePayer names the fee payer", tx: tx(valid), expect: { requiredFeePayer: FEE_PAYER } },
    { name: "extra.memo with exactly that memo", tx: tx([...valid, memo("order-42")]), expect: { memo: "order-42" } },

    { name: "unknown fee payer", tx: tx(valid, [STRANGER, PAYER]), reason: Reason.svmFeePayerMismatch },
    { name: "fee payer other than extra.feePayer", tx: tx(valid), expect: { requiredFeePayer: OTHER_FEE_PAYER }, reason: Reason.svmFeePayerMismatch },
    { name: "two instructions", tx: tx([price(), transfer()]), reason: Reason.svmInstructionsLength },
    { name: "eight instructions", tx: tx([...valid, memo("a"), memo("b"), memo("c"), memo("d"), memo("e")]), reason: Reason.svmInstructionsLength },
    { name: "CreateATA anywhere", tx: tx([limit(), price(), transfer(), ix(ASSOCIATED_TOKEN_PROGRAM, [STRANGER], new Uint8Array([1]))]), reason: Reason.svmCreateAta },
    { name: "instruction 2 is not TransferChecked (plain Transfer)", tx: tx([limit(), price(), ix(TOKEN_PROGRAM, [SOURCE, DEST, PAYER], u64(3, 1000n))]), reason: Reason.svmInstructions },
    { name: "TransferChecked of an unknown program", tx: tx([limit(), price(), transfer({ program: STRANGER })]), reason: Reason.svmInstructions },
    { name: "transfer with a fifth account", tx: tx([limit(), price(), ix(TOKEN_PROGRAM, [SOURCE, MINT, DEST, PAYER, STRANGER], transferData(1000n))]), reason: Reason.svmInstructions },
    { name: "fee payer as authority", tx: tx([limit(), price(), transfer({ authority: FEE_PAYER })], [FEE_PAYER]), reason: Reason.svmFeePayerTransferring },
    { name: "fee payer as source", tx: tx([limit(), price(), transfer({ source: FEE_PAYER })]), reason: Reason.svmFeePayerTransferring },
    { name: "fee payer's token account as source", tx: tx([limit(), price(), transfer({ source: FEE_PAYER_ATA })]), reason: Reason.svmFeePayerTransferring },
    { name: "fee payer in a memo's accounts", tx: tx([...valid, memo("x", [FEE_PAYER])]), reason: Reason.svmFeePayerInInstruction },
    { name: "fee payer in a Lighthouse instruction", tx: tx([...valid, ix(LIGHTHOUSE_PROGRAM, [FEE_PAYER])]), reason: Reason.svmFeePayerInInstruction },
    { name: "fee payer as destination", tx: tx([limit(), price(), transfer({ dest: FEE_PAYER })]), reason: Reason.svmFeePayerInInstruction },
    { name: "a third signer", tx: tx(valid, [FEE_PAYER, PAYER, STRANGER]), reason: Reason.svmSignature },
    { name: "authority is not the second signer", tx: tx(valid, [FEE_PAYER, STRANGER]), reason: Reason.svmSignature },
    { name: "instruction 0 is not SetComputeUnitLimit", tx: tx([price(), price(), transfer()]), reason: Reason.svmComputeLimit },
    { name: "instruction 1 is not SetComputeUnitPrice", tx: tx([limit(), limit(), transfer()]), reason: Reason.svmInstructions },
    { name: "price one micro-lamport too high", tx: tx([limit(), price(5_000_001n), transfer()]), reason: Reason.svmComputePrice },
    { name: "unknown fourth instruction", tx: tx([...valid, ix(STRANGER)]), reason: Reason.svmInstructions },
    { name: "a second compute-budget instruction after the transfer", tx: tx([...valid, price()]), reason: Reason.svmInstructions },
    { name: "wrong mint", tx: tx([limit(), price(), transfer({ mint: STRANGER })]), reason: Reason.svmMintMismatch },
    { name: "wrong destination", tx: tx([limit(), price(), transfer({ dest: STRANGER })]), reason: Reason.svmRecipientMismatch },
    { name: "Token-2022 transfer to the classic account", tx: tx([limit(), price(), transfer({ program: TOKEN_2022_PROGRAM })]), reason: Reason.svmRecipientMismatch },
    { name: "amount one lower", tx: tx([limit(), price(), transfer({ amount: 999n })]), reason: Reason.svmAmountMismatch },
    { name: "amount one higher", tx: tx([limit(), price(), transfer({ amount: 1001n })]), reason: Reason.svmAmountMismatch },
    { name: "extra.memo but no memo", tx: tx(valid), expect: { memo: "order-42" }, reason: Reason.svmMemoMismatch },
    { name: "extra.memo but another memo", tx: tx([...valid, memo("order-43")]), expect: { memo: "order-42" }, reason: Reason.svmMemoMismatch },
    { name: "extra.memo and two memos", tx: tx([...valid, memo("order-42"), memo("order-42")]), expect: { memo: "order-42" }, reason: Reason.svmMemoMismatch },
  ];

  it.each(cases)("$name", (c) => {
    const result = checkPaymentRules(c.tx, { ...expect_, ...c.expect });
    if (c.reason) {
      expect(result).toMatchObject({ reason: c.reason });
    } else {
      expect(result).toMatchObject({ authority: PAYER, amount: 1000n } satisfies Partial<TransferDetails>);
    }
  });
});

describe("decodePaymentTransaction", () => {
  const message = (version: 0 | "legacy") =>
    pipe(
      createTransactionMessage({ version }),
      (m) => setTransactionMessageFeePayer(FEE_PAYER, m),
      (m) => setTransactionMessageLifetimeUsingBlockhash({ blockhash: "11111111111111111111111111111111" as Blockhash, lastValidBlockHeight: 0n }, m),
      (m) => appendTransactionMessageInstructions([{ ...limit(), accounts: [] }, { ...price(), accounts: [] }], m),
    );

  it("decodes a v0 transaction into accounts, instructions and signatures", async () => {
    const wire = getBase64EncodedWireTransaction(await partiallySignTransactionMessageWithSigners(message(0)));
    const decoded = decodePaymentTransaction(wire);
    expect(decoded).toMatchObject({ feePayer: FEE_PAYER, signers: [FEE_PAYER], blockhash: "11111111111111111111111111111111" });
    expect((decoded as PaymentTransaction).instructions.map((i) => i.programAddress)).toEqual([COMPUTE_BUDGET_PROGRAM, COMPUTE_BUDGET_PROGRAM]);
    expect((decoded as PaymentTransaction).signatures[FEE_PAYER]).toBeNull();
  });

  it("rejects a legacy transaction", async () => {
    const wire = getBase64EncodedWireTransaction(await partiallySignTransactionMessageWithSigners(message("legacy")));
    expect(decodePaymentTransaction(wire)).toMatchObject({ reason: Reason.svmVersion });
  });

  it.each(["", "not base64!", "AAAA", Buffer.from("hello world").toString("base64")])("rejects %j as invalid_payload", (wire) => {
    expect(decodePaymentTransaction(wire)).toMatchObject({ reason: Reason.invalidPayload });
  });

  it("lists the signers in message order, the fee payer first", async () => {
    const withPayer = pipe(message(0), (m) =>
      appendTransactionMessageInstructions([{ ...memo("x"), accounts: [{ address: PAYER, role: AccountRole.READONLY_SIGNER, signer: createNoopSigner(PAYER) }] } as never], m),
    );
    const decoded = decodePaymentTransaction(getBase64EncodedWireTransaction(await partiallySignTransactionMessageWithSigners(withPayer)));
    expect((decoded as PaymentTransaction).signers).toEqual([FEE_PAYER, PAYER]);
  });
});

describe("simulationRejection", () => {
  it.each([
    { err: null, reason: undefined },
    { err: "BlockhashNotFound", reason: Reason.svmBlockhashExpired },
    { err: { InstructionError: [2n, { Custom: 1n }] }, reason: Reason.insufficientFunds },
    { err: { InstructionError: [2, { Custom: 1 }] }, reason: Reason.insufficientFunds },
    { err: { InstructionError: [2, { Custom: 3 }] }, reason: Reason.svmSimulationFailed },
    { err: { InstructionError: [0, "InvalidInstructionData"] }, reason: Reason.svmSimulationFailed },
    { err: "InsufficientFundsForFee", reason: Reason.svmSimulationFailed },
  ])("$err -> $reason", ({ err, reason }) => {
    expect(simulationRejection(err, ["Program log: x"])?.reason).toBe(reason);
  });
});

describe("checkPaymentPolicy", () => {
  // The network as configuration makes it: its mint, plus one more through NETWORK_OVERRIDES' extraAssets.
  const network = new NetworkRegistry([{ name: "solana-devnet", asset: { address: MINT }, extraAssets: [{ address: EXTRA_MINT, decimals: 6 }] }]).get("solana-devnet");
  const policy: PaymentPolicy = { network, maxComputeUnits: DEFAULT_MAX_COMPUTE_UNITS, maxPriorityFeeLamports: DEFAULT_MAX_PRIORITY_FEE_LAMPORTS };
  const budget = (units: number, micro: bigint) => tx([limit(units), price(micro), transfer()]);
  const cases: { name: string; tx: PaymentTransaction; asset?: string; amount?: bigint; policy?: Partial<PaymentPolicy>; reason?: string }[] = [
    { name: "@x402/svm 2.27: 20,000 units at 1 micro-lamport", tx: budget(20_000, 1n) },
    { name: "x402@1.2.0: its simulated estimate at 1 micro-lamport", tx: budget(6_500, 1n) },
    { name: "a wallet's memo and Lighthouse budget, well under the cap", tx: budget(60_000, 1_000n) },
    { name: "exactly the unit cap", tx: budget(200_000, 1n) },
    { name: "exactly the fee cap: 200,000 units at 25,000 micro-lamports = 5,000 lamports", tx: budget(200_000, 25_000n) },
    { name: "a high price on few units: 1,000 units at the 5 lamports/unit price cap = 5,000 lamports", tx: budget(1_000, 5_000_000n) },
    { name: "no priority fee at all", tx: budget(20_000, 0n) },
    { name: "the extra accepted mint", tx: budget(20_000, 1n), asset: EXTRA_MINT },
    { name: "amount 1", tx: budget(20_000, 1n), amount: 1n },
    { name: "a larger cap by configuration", tx: budget(400_000, 1n), policy: { maxComputeUnits: 400_000 } },

    { name: "the reproduced attack: 1.4M units at the price cap", tx: budget(1_400_000, 5_000_000n), reason: Reason.svmComputeUnitsTooHigh },
    { name: "1.4M units at 1 micro-lamport", tx: budget(1_400_000, 1n), reason: Reason.svmComputeUnitsTooHigh },
    { name: "one unit over the cap", tx: budget(200_001, 0n), reason: Reason.svmComputeUnitsTooHigh },
    { name: "u32 max units", tx: budget(0xffff_ffff, 1n), reason: Reason.svmComputeUnitsTooHigh },
    { name: "fee one micro-lamport-unit over the cap (rounds up to 5,001 lamports)", tx: budget(200_000, 25_001n), reason: Reason.svmPriorityFeeTooHigh },
    { name: "the unit cap at the price cap: 1,000,000 lamports", tx: budget(200_000, 5_000_000n), reason: Reason.svmPriorityFeeTooHigh },
    { name: "fee cap 0 refuses even the official 1 lamport", tx: budget(20_000, 1n), policy: { maxPriorityFeeLamports: 0 }, reason: Reason.svmPriorityFeeTooHigh },
    { name: "a mint the network does not accept", tx: budget(20_000, 1n), asset: STRANGER, reason: Reason.assetNotAllowed },
    { name: "the mainnet USDC mint on a network configured with another", tx: budget(20_000, 1n), asset: "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", reason: Reason.assetNotAllowed },
    { name: "amount 0", tx: budget(20_000, 1n), amount: 0n, reason: Reason.amountNotPositive },
    { name: "the full attack: zero amount, unknown mint, 1.4M units (the mint is named first)", tx: budget(1_400_000, 5_000_000n), asset: STRANGER, amount: 0n, reason: Reason.assetNotAllowed },
    { name: "zero amount and 1.4M units (the amount is named first)", tx: budget(1_400_000, 5_000_000n), amount: 0n, reason: Reason.amountNotPositive },
  ];

  it.each(cases)("$name", (c) => {
    const result = checkPaymentPolicy(c.tx, { asset: c.asset ?? MINT, amount: c.amount ?? 1000n }, { ...policy, ...c.policy });
    if (c.reason) {
      expect(result).toMatchObject({ reason: c.reason });
      expect(result!.message.length).toBeGreaterThan(20);
    } else {
      expect(result).toBeUndefined();
    }
  });

  it("prices the fee as the runtime charges it: on the units asked for, rounded up", () => {
    expect(priorityFeeLamports(20_000, 1n)).toBe(1n);
    expect(priorityFeeLamports(20_000, 0n)).toBe(0n);
    expect(priorityFeeLamports(1_000_000, 1n)).toBe(1n);
    expect(priorityFeeLamports(1_000_001, 1n)).toBe(2n);
    expect(priorityFeeLamports(1_400_000, 5_000_000n)).toBe(7_000_000n);
    expect(priorityFeeLamports(0xffff_ffff, 0xffff_ffff_ffff_ffffn)).toBe((0xffff_ffffn * 0xffff_ffff_ffff_ffffn + 999_999n) / 1_000_000n);
  });
});
