import { beforeAll, describe, expect, it } from "vitest";
import { Reason, type LedgerEntry } from "@facilitator/core";
import { devKey } from "@facilitator/devnet";
import { parseEther, type Hash, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { createEvmExactMechanism, type EvmExactMechanism } from "./mechanism.ts";
import { transferWithAuthorizationCall } from "./eip3009-handler.ts";
import type { Eip3009EvmPayment } from "./eip3009-handler.ts";
import { startChainWithMechanism, startTestChain, type TempLedger, type TestChain } from "./testing/index.ts";

let chain: TestChain;
let store: TempLedger;
let mechanism: EvmExactMechanism;

const BOUNDS = { receiptTimeoutMs: 800, pollingIntervalMs: 25, stallCheckMs: 250 };
const options = () => ({ networks: [chain.network], ledger: store.ledger, ...BOUNDS });
const automine = (on: boolean) => chain.rpc("evm_setAutomine", [on]);

beforeAll(async () => {
  const fx = await startChainWithMechanism(startTestChain, BOUNDS);
  ({ chain, store, mechanism } = fx);
  return fx.stop;
});

describe("settlement_pending and reconciliation", () => {
  it("answers pending with the hash, reconciles to one success with that hash, then duplicate", async () => {
    const request = await chain.pay({ value: 4242n });
    const payToBefore = await chain.balanceOf(chain.payTo);
    const minedBefore = await chain.minedCount();
    await automine(false);
    try {
      const first = await mechanism.settle(request);
      expect(first).toMatchObject({ success: false, reason: Reason.settlementPending });
      const hash = first.transaction as Hash;
      expect(hash).toMatch(/^0x[0-9a-f]{64}$/);
      expect(await store.ledger.countUnconfirmed()).toBe(1);

      // A retry before anything is mined reconciles against the same hash (no new transaction).
      expect(await mechanism.settle(request)).toMatchObject({ success: false, reason: Reason.settlementPending, transaction: hash });

      await chain.rpc("evm_mine");
      expect(await mechanism.settle(request)).toEqual({ success: true, payer: chain.payer.address, transaction: hash, amount: 4242n });
      expect(await mechanism.settle(request)).toMatchObject({ success: false, reason: Reason.duplicateSettlement, transaction: hash });
      expect(await chain.minedCount()).toBe(minedBefore + 1);
      expect(await chain.balanceOf(chain.payTo)).toBe(payToBefore + 4242n);
      expect(await store.ledger.countUnconfirmed()).toBe(0);
    } finally {
      await automine(true);
    }
  });

  it("does not let a dropped transaction wedge later settles: its same bytes are sent again", async () => {
    const [a, b] = [await chain.pay({ value: 1n }), await chain.pay({ value: 2n })];
    const minedBefore = await chain.minedCount();
    await automine(false);
    const pendingA = await mechanism.settle(a);
    expect(pendingA).toMatchObject({ reason: Reason.settlementPending });
    const hashA = pendingA.transaction as Hash;
    await chain.rpc("anvil_dropTransaction", [hashA]);
    expect(await chain.rpc("eth_getTransactionByHash", [hashA])).toBeNull();
    await automine(true);

    // B's nonce sits behind A's hole; the stalled wait finds A gone and re-sends A's recorded bytes.
    const settledB = await mechanism.settle(b);
    expect(settledB).toMatchObject({ success: true });
    expect((await chain.client.getTransactionReceipt({ hash: hashA })).status).toBe("success");
    // A's retry reconciles against the hash it was told: success, no third transaction.
    expect(await mechanism.settle(a)).toEqual({ success: true, payer: chain.payer.address, transaction: hashA, amount: 1n });
    expect(await chain.minedCount()).toBe(minedBefore + 2);
  });

  it("records a settlement that reverted on chain as failed with its hash, and later settles go on", async () => {
    const request = await chain.pay({ value: 77n });
    const payToBefore = await chain.balanceOf(chain.payTo);
    await automine(false);
    let outcome;
    try {
      const settling = mechanism.settle(request);
      // Once our transaction waits in the pool, a third party front-runs it with the same authorization.
      while (Number(await chain.rpc("eth_getTransactionCount", [chain.facilitator, "pending"])) === (await chain.minedCount())) {
        await new Promise((r) => setTimeout(r, 10));
      }
      await chain.submitElsewhere(request);
      await chain.rpc("evm_mine");
      outcome = await settling;
      if (!outcome.success && outcome.reason === Reason.settlementPending) outcome = await mechanism.settle(request); // slow machine
    } finally {
      await automine(true);
    }
    expect(outcome).toMatchObject({ success: false, reason: Reason.evmTransactionFailed });
    const hash = outcome.transaction as Hash;
    expect((await chain.client.getTransactionReceipt({ hash })).status).toBe("reverted");
    expect(await mechanism.settle(request)).toMatchObject({ success: false, reason: Reason.evmTransactionFailed, transaction: hash });
    expect(await chain.balanceOf(chain.payTo)).toBe(payToBefore + 77n); // paid once, by the third party
    expect(await mechanism.settle(await chain.pay({ value: 78n }))).toMatchObject({ success: true });
  });

  it("recovers a broadcast recorded by a process that died before sending it", async () => {
    const request = await chain.pay({ value: 31n });
    const runtime = mechanism.runtime(chain.network)!;
    const parsed = runtime.handler.parse(request);
    if (!parsed.ok) throw new Error("payment should parse");
    // What a crashed process leaves behind: a recorded broadcast (bytes and hash), never sent, lease run out.
    const signer = runtime.pool.signers[0]!;
    const gas = 200_000n;
    const tx = await signer.sign({ ...transferWithAuthorizationCall(parsed.value as Eip3009EvmPayment), gas }, await runtime.fees.quote(), await signer.nonces.acquire());
    const key = chain.ledgerKey(request);
    const claimed = await store.ledger.compareAndSet({ key, state: "claimed", network: chain.network.caip2, leaseUntil: 0, updatedAt: Date.now() }, 0);
    await store.ledger.compareAndSet({ ...claimed!, state: "broadcast", transaction: tx.hash, rawTransaction: tx.raw, leaseUntil: Date.now() - 1 }, 1);

    expect(await mechanism.settle(request)).toEqual({ success: true, payer: chain.payer.address, transaction: tx.hash, amount: 31n });
    expect(await mechanism.settle(request)).toMatchObject({ reason: Reason.duplicateSettlement, transaction: tx.hash });
  });

  it("records a payment failed when the node refuses its transaction, and the nonce is used again", async () => {
    const poorKey = devKey(23);
    const poor = privateKeyToAccount(poorKey).address;
    await chain.rpc("anvil_setBalance", [poor, "0x0"]);
    const broke = createEvmExactMechanism({ ...options(), signers: [poorKey] });
    const request = await chain.pay({ value: 5n });

    const refused = await broke.settle(request);
    expect(refused).toMatchObject({ success: false, reason: Reason.unexpectedSettle, transaction: "" });
    expect((refused as { message: string }).message).toMatch(/insufficient funds/i);
    expect(await store.ledger.get(chain.ledgerKey(request))).toMatchObject({ state: "failed" });
    expect(await broke.settle(request)).toMatchObject({ success: false, reason: Reason.unexpectedSettle, transaction: "" });

    await chain.rpc("anvil_setBalance", [poor, `0x${parseEther("1").toString(16)}`]);
    const next = await broke.settle(await chain.pay({ value: 6n }));
    expect(next).toMatchObject({ success: true });
    expect((await chain.client.getTransaction({ hash: next.transaction as Hex })).nonce).toBe(0);
  });

  it("frees the signer's nonce when the store fails while recording a broadcast, so later settles go on", async () => {
    const key = devKey(24);
    await chain.rpc("anvil_setBalance", [privateKeyToAccount(key).address, `0x${parseEther("1").toString(16)}`]);
    // Stands in for a store outage at exactly the broadcast write (the real stores fail this way when Redis goes away).
    let failBroadcast = true;
    const flaky: typeof store.ledger = Object.create(store.ledger, {
      compareAndSet: {
        value: (next: LedgerEntry, expected: number) =>
          failBroadcast && next.state === "broadcast" ? Promise.reject(new Error("store unreachable")) : store.ledger.compareAndSet(next, expected),
      },
    });
    const settler = createEvmExactMechanism({ ...options(), ledger: flaky, signers: [key] });

    const lost = await settler.settle(await chain.pay({ value: 7n }));
    expect(lost).toMatchObject({ success: false, reason: Reason.unexpectedSettle, transaction: "" });
    failBroadcast = false;
    const next = await settler.settle(await chain.pay({ value: 8n }));
    expect(next).toMatchObject({ success: true });
    expect((await chain.client.getTransaction({ hash: next.transaction as Hex })).nonce).toBe(0);
  });

  it("signs again at a fresh nonce when another transaction of its key (a process sharing it) took the nonce", async () => {
    const key = devKey(25);
    const account = privateKeyToAccount(key);
    await chain.rpc("anvil_setBalance", [account.address, `0x${parseEther("10").toString(16)}`]);
    const settler = createEvmExactMechanism({ ...options(), receiptTimeoutMs: 3_000, signers: [key] });
    const request = await chain.pay({ value: 9n });
    const [payToBefore, nonce] = await Promise.all([chain.balanceOf(chain.payTo), chain.client.getTransactionCount({ address: account.address })]);

    await automine(false);
    let settling: Promise<unknown> | undefined;
    try {
      settling = settler.settle(request);
      while (Number(await chain.rpc("eth_getTransactionCount", [account.address, "pending"])) === nonce) await new Promise((r) => setTimeout(r, 10));
      // The other process's transaction at the same nonce, with a higher fee: it replaces ours in the pool and is mined.
      const other = await account.signTransaction({
        chainId: chain.network.chainId!, nonce, to: account.address, value: 0n, gas: 21_000n,
        maxFeePerGas: parseEther("0.000001"), maxPriorityFeePerGas: parseEther("0.0000001"),
      });
      await chain.rpc("eth_sendRawTransaction", [other]);
      await chain.rpc("evm_mine");
    } finally {
      await automine(true);
    }

    const outcome = (await settling) as { success: boolean; transaction: Hash };
    expect(outcome).toMatchObject({ success: true });
    expect((await chain.client.getTransaction({ hash: outcome.transaction })).nonce).toBe(nonce + 1);
    expect((await chain.balanceOf(chain.payTo)) - payToBefore).toBe(9n);
  });
});
