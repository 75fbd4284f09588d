/**
 * Issue 11, item 5: "Fee payer drained (Solana)". Each attack is performed as a stranger would, over
 * the facilitator's HTTP /verify and /settle, against litesvm behind our JSON-RPC front: a zero-amount
 * self-transfer asking 1.4M compute units at the price cap (about 700 normal fees), a priority fee
 * over the cap, a mint of the attacker's own, an amount of 0. Each is refused with its own reason,
 * counted in /metrics, and leaves the chain as it was: no transaction, the fee payer's SOL and every
 * token balance unchanged, nothing claimed in the ledger.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Address } from "@solana/kit";
import { Reason } from "@facilitator/core";
import { setupSolanaWorld, type SolanaWorld } from "@facilitator/devnet";
import { DEFAULT_MAX_COMPUTE_UNITS, DEFAULT_MAX_PRIORITY_FEE_LAMPORTS, MAX_COMPUTE_UNIT_PRICE_MICROLAMPORTS } from "@facilitator/svm";
import { ConfigError, loadConfig } from "../packages/server/src/config.ts";
import { postJson } from "@facilitator/server/testing";
import { startFacilitatorOnSolana, type RunningFacilitator } from "./helpers/facilitator.ts";
import {
  buildPaymentTx,
  chainSnapshot,
  DEVNET_CAIP2,
  solBalance,
  startSolanaFixture,
  tokenBalance,
  type PaymentTxOptions,
  type SolanaFixture,
} from "./helpers/solana.ts";

let fx: SolanaFixture;
let facilitator: RunningFacilitator;
/** The attacker's own mint, with its own holder and payee: real accounts on the same chain, not accepted by us. */
let rogue: SolanaWorld;

beforeAll(async () => {
  fx = await startSolanaFixture();
  rogue = await setupSolanaWorld(fx.rpc, { decimals: 6, feePayerCount: 0 });
  facilitator = await startFacilitatorOnSolana(fx);
});
afterAll(async () => {
  await facilitator?.stop();
  await fx?.stop();
});

interface Ask {
  amount: bigint;
  asset?: Address;
  payTo?: Address;
}

function requirements(ask: Ask) {
  return {
    scheme: "exact",
    network: DEVNET_CAIP2,
    amount: ask.amount.toString(),
    asset: ask.asset ?? fx.world.mint,
    payTo: ask.payTo ?? fx.world.payTo,
    maxTimeoutSeconds: 60,
    extra: { feePayer: fx.world.feePayers[0].address },
  };
}

/** A facilitator body as a resource server (or an attacker posing as one) sends it, v2 or v1. */
function body(version: 1 | 2, transaction: string, ask: Ask) {
  const r = requirements(ask);
  if (version === 2) {
    return { x402Version: 2, paymentPayload: { x402Version: 2, accepted: r, payload: { transaction } }, paymentRequirements: r };
  }
  const v1 = {
    scheme: "exact",
    network: "solana-devnet",
    maxAmountRequired: r.amount,
    asset: r.asset,
    payTo: r.payTo,
    resource: "http://127.0.0.1/paid",
    description: "",
    mimeType: "application/json",
    maxTimeoutSeconds: 60,
    extra: r.extra,
  };
  return { x402Version: 1, paymentPayload: { x402Version: 1, scheme: "exact", network: "solana-devnet", payload: { transaction } }, paymentRequirements: v1 };
}

async function post(url: string, endpoint: "verify" | "settle", payload: unknown): Promise<Record<string, unknown>> {
  const res = await postJson(`${url}/${endpoint}`, payload);
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

/** Everything a settlement could move: transactions, the fee payers' SOL, both mints' balances. */
async function everything(f: SolanaFixture = fx) {
  return {
    ...(await chainSnapshot(f)),
    feePayerSol: await Promise.all(f.world.feePayers.map((p) => solBalance(f, p.address))),
    rogueHolder: await tokenBalance(f, rogue.payerTokenAccount),
    roguePayee: await tokenBalance(f, rogue.payToTokenAccount),
    payerSol: await solBalance(f, f.world.payer.address),
  };
}

interface Attack {
  name: string;
  reason: string;
  tx: () => PaymentTxOptions;
  ask: () => Ask;
}

const selfTransfer = () => ({ destination: fx.world.payerTokenAccount });

const attacks: Attack[] = [
  {
    // Exactly what was reproduced: amount 0 to oneself, 1.4M units at 5 lamports a unit.
    name: "the reproduced drain: zero-amount self-transfer, 1.4M units at the price cap",
    reason: Reason.amountNotPositive,
    tx: () => ({ ...selfTransfer(), amount: 0n, unitLimit: 1_400_000, microLamportsPerUnit: MAX_COMPUTE_UNIT_PRICE_MICROLAMPORTS }),
    ask: () => ({ amount: 0n, payTo: fx.world.payer.address }),
  },
  {
    // The same drain paying itself one base unit, so the amount rule cannot be what stops it.
    name: "1.4M units at the price cap, one-unit self-transfer",
    reason: Reason.svmComputeUnitsTooHigh,
    tx: () => ({ ...selfTransfer(), amount: 1n, unitLimit: 1_400_000, microLamportsPerUnit: MAX_COMPUTE_UNIT_PRICE_MICROLAMPORTS }),
    ask: () => ({ amount: 1n, payTo: fx.world.payer.address }),
  },
  {
    name: "one unit over the compute cap, no priority fee",
    reason: Reason.svmComputeUnitsTooHigh,
    tx: () => ({ unitLimit: DEFAULT_MAX_COMPUTE_UNITS + 1, microLamportsPerUnit: 0n }),
    ask: () => ({ amount: 10_000n }),
  },
  {
    name: "units within the cap at the price cap: 1,000,000 lamports of priority fee",
    reason: Reason.svmPriorityFeeTooHigh,
    tx: () => ({ unitLimit: DEFAULT_MAX_COMPUTE_UNITS, microLamportsPerUnit: MAX_COMPUTE_UNIT_PRICE_MICROLAMPORTS }),
    ask: () => ({ amount: 10_000n }),
  },
  {
    // 200,000 x 25,001 / 1e6 = 5,000.2, charged as 5,001 lamports: one over.
    name: "a priority fee one lamport over the cap",
    reason: Reason.svmPriorityFeeTooHigh,
    tx: () => ({ unitLimit: DEFAULT_MAX_COMPUTE_UNITS, microLamportsPerUnit: 25_001n }),
    ask: () => ({ amount: 10_000n }),
  },
  {
    name: "a mint of the attacker's own, paid to its own payee",
    reason: Reason.assetNotAllowed,
    tx: () => ({ authority: rogue.payer.signer, source: rogue.payerTokenAccount, mint: rogue.mint, destination: rogue.payToTokenAccount }),
    ask: () => ({ amount: 10_000n, asset: rogue.mint, payTo: rogue.payTo }),
  },
  {
    name: "a mint of the attacker's own, zero-amount self-transfer, 1.4M units",
    reason: Reason.assetNotAllowed,
    tx: () => ({
      authority: rogue.payer.signer,
      source: rogue.payerTokenAccount,
      mint: rogue.mint,
      destination: rogue.payerTokenAccount,
      amount: 0n,
      unitLimit: 1_400_000,
      microLamportsPerUnit: MAX_COMPUTE_UNIT_PRICE_MICROLAMPORTS,
    }),
    ask: () => ({ amount: 0n, asset: rogue.mint, payTo: rogue.payer.address }),
  },
  {
    name: "amount 0 to the payee, the official clients' compute budget",
    reason: Reason.amountNotPositive,
    tx: () => ({ amount: 0n, memo: "0af3c1d2e3f4a5b6" }),
    ask: () => ({ amount: 0n }),
  },
];

describe("attacks on the Solana fee payer, over HTTP", () => {
  const counted: Record<string, { verify: number; settle: number }> = {};

  it.each(attacks.flatMap((a) => [1, 2].map((version) => ({ ...a, version: version as 1 | 2 }))))(
    "v$version $name -> $reason; nothing moves",
    async (a) => {
      const before = await everything();
      const payment = body(a.version, await buildPaymentTx(fx, a.tx()), a.ask());

      const verified = await post(facilitator.url, "verify", payment);
      expect(verified).toMatchObject({ isValid: false, invalidReason: a.reason });
      expect(String(verified.invalidMessage).length).toBeGreaterThan(20);
      const settled = await post(facilitator.url, "settle", payment);
      expect(settled).toMatchObject({ success: false, errorReason: a.reason, transaction: "" });
      // A retry is refused the same way: the first refusal claimed nothing.
      expect(await post(facilitator.url, "settle", payment)).toMatchObject({ success: false, errorReason: a.reason, transaction: "" });

      expect(await everything()).toEqual(before);
      expect(await facilitator.services.ledger.countUnconfirmed()).toBe(0);
      const c = (counted[a.reason] ??= { verify: 0, settle: 0 });
      c.verify += 1;
      c.settle += 2;
    },
  );

  it("counts every refusal in /metrics under its reason", async () => {
    const text = await (await fetch(`${facilitator.url}/metrics`)).text();
    const sample = (endpoint: string, outcome: string) =>
      Number(new RegExp(`^x402_${endpoint}_requests_total\\{network="solana-devnet",outcome="${outcome}"\\} (\\d+)$`, "m").exec(text)?.[1] ?? 0);
    expect(Object.keys(counted).sort()).toEqual([Reason.amountNotPositive, Reason.assetNotAllowed, Reason.svmComputeUnitsTooHigh, Reason.svmPriorityFeeTooHigh].sort());
    for (const [reason, n] of Object.entries(counted)) {
      expect({ reason, verify: sample("verify", reason), settle: sample("settle", reason) }).toEqual({ reason, ...n });
    }
  });

  it("a payment at the caps is valid, and an honest one costs the fee payer two signatures and 1 lamport", async () => {
    // At both caps exactly: 200,000 units x 25,000 micro-lamports = 5,000 lamports. Verified, not settled.
    const atCaps = body(2, await buildPaymentTx(fx, { unitLimit: DEFAULT_MAX_COMPUTE_UNITS, microLamportsPerUnit: 25_000n }), { amount: 10_000n });
    expect(await post(facilitator.url, "verify", atCaps)).toEqual({ isValid: true, payer: fx.world.payer.address });

    // The official v2 client's shape: 20,000 units at 1 micro-lamport, a random memo.
    const before = await everything();
    const honest = body(2, await buildPaymentTx(fx, { memo: "5c1d0e2f3a4b6c7d" }), { amount: 10_000n });
    expect(await post(facilitator.url, "settle", honest)).toMatchObject({ success: true, payer: fx.world.payer.address });
    const after = await everything();
    expect(after.payee - before.payee).toBe(10_000n);
    expect(before.feePayerSol[0] - after.feePayerSol[0]).toBe(2n * 5_000n + 1n);
    expect(after.payerSol).toBe(0n);
  });
});

describe("the caps come from the environment", () => {
  it("SVM_MAX_COMPUTE_UNITS and SVM_MAX_PRIORITY_FEE_LAMPORTS default to the documented caps and are range-checked", () => {
    expect(loadConfig({})).toMatchObject({ svmMaxComputeUnits: 200_000, svmMaxPriorityFeeLamports: 5_000 });
    expect(DEFAULT_MAX_COMPUTE_UNITS).toBe(200_000);
    expect(DEFAULT_MAX_PRIORITY_FEE_LAMPORTS).toBe(5_000);
    expect(loadConfig({ SVM_MAX_COMPUTE_UNITS: "400000", SVM_MAX_PRIORITY_FEE_LAMPORTS: "0" })).toMatchObject({
      svmMaxComputeUnits: 400_000,
      svmMaxPriorityFeeLamports: 0,
    });
    for (const [name, value] of [
      ["SVM_MAX_COMPUTE_UNITS", "0"],
      ["SVM_MAX_COMPUTE_UNITS", "1400001"],
      ["SVM_MAX_COMPUTE_UNITS", "lots"],
      ["SVM_MAX_PRIORITY_FEE_LAMPORTS", "-1"],
      ["SVM_MAX_PRIORITY_FEE_LAMPORTS", "1.5"],
    ]) {
      expect(() => loadConfig({ [name]: value }), `${name}=${value}`).toThrow(ConfigError);
      expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`${name}: `));
    }
  });

  it("tighter caps from the environment reach the mechanism: the official clients' budget is refused", async () => {
    const tight = loadConfig({ SVM_MAX_COMPUTE_UNITS: "10000", SVM_MAX_PRIORITY_FEE_LAMPORTS: "0" });
    const strict = await startFacilitatorOnSolana(fx, { svmMaxComputeUnits: tight.svmMaxComputeUnits, svmMaxPriorityFeeLamports: tight.svmMaxPriorityFeeLamports });
    try {
      const before = await everything();
      const official = body(2, await buildPaymentTx(fx, { unitLimit: 20_000, microLamportsPerUnit: 1n }), { amount: 10_000n });
      expect(await post(strict.url, "settle", official)).toMatchObject({ success: false, errorReason: Reason.svmComputeUnitsTooHigh });
      const feeOfOne = body(2, await buildPaymentTx(fx, { unitLimit: 10_000, microLamportsPerUnit: 1n }), { amount: 10_000n });
      expect(await post(strict.url, "settle", feeOfOne)).toMatchObject({ success: false, errorReason: Reason.svmPriorityFeeTooHigh });
      const noFee = body(2, await buildPaymentTx(fx, { unitLimit: 10_000, microLamportsPerUnit: 0n }), { amount: 10_000n });
      expect(await post(strict.url, "verify", noFee)).toEqual({ isValid: true, payer: fx.world.payer.address });
      expect(await everything()).toEqual(before);
    } finally {
      await strict.stop();
    }
  });
});
