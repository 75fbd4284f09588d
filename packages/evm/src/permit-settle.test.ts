import { beforeAll, describe, expect, it } from "vitest";
import { Reason } from "@facilitator/core";
import { devKey, DevRole } from "@facilitator/devnet";
import { encodeFunctionData, parseAbi, parseEventLogs, parseGwei, type Address, type Hash, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import type { EvmExactMechanism } from "./mechanism.ts";
import { startChainWithMechanism, startPermitTestChain, type PermitTestChain, type TempLedger } from "./testing/index.ts";

let chain: PermitTestChain;
let store: TempLedger;
let mechanism: EvmExactMechanism;

const erc20 = parseAbi([
  "function approve(address spender, uint256 value) returns (bool)",
  "function transfer(address to, uint256 value) returns (bool)",
  "event Transfer(address indexed from, address indexed to, uint256 value)",
]);
const automine = (on: boolean) => chain.rpc("evm_setAutomine", [on]);
const pendingCount = async (who: Address) => Number(await chain.rpc("eth_getTransactionCount", [who, "pending"]));
/**
 * Sends `data` to the token as `from` (impersonated). anvil orders a block by fee: by default this one
 * comes first; `last` makes it come after the facilitator's (no tip, fee cap just above the base fee).
 */
async function sendAs(from: Address, data: Hex, order: "first" | "last" = "first"): Promise<Hash> {
  await chain.rpc("anvil_impersonateAccount", [from]);
  await chain.rpc("anvil_setBalance", [from, "0x56BC75E2D63100000"]); // 100 ETH
  const baseFee = (await chain.client.getBlock()).baseFeePerGas!;
  const [tip, cap] = order === "first" ? [parseGwei("50"), parseGwei("200")] : [0n, baseFee + baseFee / 4n];
  const tx = { from, to: chain.asset, data, gas: "0x30d40", maxPriorityFeePerGas: `0x${tip.toString(16)}`, maxFeePerGas: `0x${cap.toString(16)}` };
  return (await chain.rpc("eth_sendTransaction", [tx])) as Hash;
}
/** Waits until the facilitator has `n` more transactions in the pool than mined. */
async function waitForPool(n: number): Promise<void> {
  while ((await pendingCount(chain.facilitator)) - (await chain.minedCount()) < n) await new Promise((r) => setTimeout(r, 10));
}

beforeAll(async () => {
  const fx = await startChainWithMechanism(startPermitTestChain, {
    signers: [devKey(DevRole.facilitator), devKey(DevRole.facilitator2)],
    receiptTimeoutMs: 800,
    stallCheckMs: 250,
  });
  ({ chain, store, mechanism } = fx);
  return fx.stop;
});

describe("ERC-2612 permit settlement", () => {
  it("sends permit then transferFrom from the spender at consecutive nonces; funds move once", async () => {
    const request = await chain.pay({ value: 5000n });
    const [payerBefore, payToBefore, nonceBefore, minedBefore] = await Promise.all([
      chain.balanceOf(chain.payer.address), chain.balanceOf(chain.payTo), chain.nonces(chain.payer.address), chain.minedCount(),
    ]);
    const outcome = await mechanism.settle(request);
    expect(outcome).toMatchObject({ success: true, payer: chain.payer.address, amount: 5000n });
    const hash = outcome.transaction as Hash;

    const transfer = await chain.client.getTransaction({ hash });
    expect(transfer.from.toLowerCase()).toBe(chain.facilitator.toLowerCase());
    expect(transfer.nonce).toBe(minedBefore + 1); // the permit went at minedBefore
    expect(await chain.minedCount()).toBe(minedBefore + 2);
    expect(await chain.nonces(chain.payer.address)).toBe(nonceBefore + 1n);
    expect(await chain.allowance(chain.payer.address, chain.facilitator)).toBe(0n);
    expect(await chain.balanceOf(chain.payer.address)).toBe(payerBefore - 5000n);
    expect(await chain.balanceOf(chain.payTo)).toBe(payToBefore + 5000n);
    expect(await chain.client.getBalance({ address: chain.payer.address })).toBe(0n);

    expect(await mechanism.settle(request)).toMatchObject({ success: false, reason: Reason.duplicateSettlement, transaction: hash });
    // The record keeps what the first request asked; past the retention the chain refuses a replay (the nonce is used).
    expect((await store.ledger.get(chain.ledgerKey(request)))?.binding).toMatchObject({ payTo: chain.payTo.toLowerCase(), amount: "5000" });
    expect(await chain.minedCount()).toBe(minedBefore + 2);
  });

  it("refuses a permit a third party submitted before we ever recorded it: its nonce is used, nothing moves", async () => {
    const request = await chain.pay({ value: 700n });
    await chain.client.waitForTransactionReceipt({ hash: await chain.permitElsewhere(request) });
    const [payToBefore, minedBefore] = [await chain.balanceOf(chain.payTo), await chain.minedCount()];
    expect(await mechanism.verify(request)).toMatchObject({ isValid: false, reason: Reason.permitNonce });
    expect(await mechanism.settle(request)).toMatchObject({ success: false, reason: Reason.permitNonce, transaction: "" });
    expect(await chain.minedCount()).toBe(minedBefore);
    expect(await chain.balanceOf(chain.payTo)).toBe(payToBefore);
  });

  it("sends the permit even when the payer approved the spender earlier: the token checks the signature", async () => {
    const owner = privateKeyToAccount(devKey(8));
    await chain.mint(owner.address, 10_000n);
    await chain.client.waitForTransactionReceipt({ hash: await sendAs(owner.address, encodeFunctionData({ abi: erc20, functionName: "approve", args: [chain.facilitator, 300n] })) });
    const request = await chain.pay({ account: owner, value: 300n });
    const minedBefore = await chain.minedCount();
    expect(await mechanism.settle(request)).toMatchObject({ success: true, payer: owner.address });
    expect(await chain.minedCount()).toBe(minedBefore + 2);
    expect(await chain.nonces(owner.address)).toBe(1n);
  });

  it("still settles when a third party front-runs the permit while ours waits in the pool", async () => {
    const request = await chain.pay({ value: 42n });
    const payToBefore = await chain.balanceOf(chain.payTo);
    await automine(false);
    let outcome;
    try {
      const settling = mechanism.settle(request);
      await waitForPool(2);
      await chain.permitElsewhere(request); // higher tip: mined before our permit, which then reverts
      await chain.rpc("evm_mine");
      outcome = await settling;
    } finally {
      await automine(true);
    }
    if (!outcome.success && outcome.reason === Reason.settlementPending) outcome = await mechanism.settle(request); // slow machine
    expect(outcome).toMatchObject({ success: true, amount: 42n });
    expect(await chain.balanceOf(chain.payTo)).toBe(payToBefore + 42n);
  });

  it("settles 20 concurrent copies of one permit exactly once: one transfer, one success, 19 duplicate_settlement", async () => {
    const request = await chain.pay({ value: 777n });
    const [payToBefore, minedBefore] = [await chain.balanceOf(chain.payTo), await chain.minedCount()];
    const fromBlock = await chain.client.getBlockNumber();
    const outcomes = await Promise.all(Array.from({ length: 20 }, () => mechanism.settle(request)));
    expect(outcomes.filter((o) => o.success)).toHaveLength(1);
    expect(outcomes.filter((o) => !o.success).map((o) => (o as { reason: string }).reason)).toEqual(Array(19).fill(Reason.duplicateSettlement));
    expect(await chain.minedCount()).toBe(minedBefore + 2);
    expect(await chain.balanceOf(chain.payTo)).toBe(payToBefore + 777n);
    const logs = await chain.client.getLogs({ address: chain.asset, fromBlock: fromBlock + 1n, toBlock: "latest" });
    const transfers = parseEventLogs({ abi: erc20, logs, eventName: "Transfer" });
    expect(transfers.filter((t) => t.args.to === chain.payTo)).toHaveLength(1);
  });

  it("answers settlement_pending with the transferFrom hash and reconciles to one success", async () => {
    const request = await chain.pay({ value: 4242n });
    const minedBefore = await chain.minedCount();
    await automine(false);
    try {
      const first = await mechanism.settle(request);
      expect(first).toMatchObject({ success: false, reason: Reason.settlementPending });
      const hash = first.transaction as Hash;
      const entry = await store.ledger.get(chain.ledgerKey(request));
      expect(entry).toMatchObject({ state: "broadcast", transaction: hash });
      expect(entry?.priorTransactions).toHaveLength(1); // the permit, recorded before anything was sent
      expect(await mechanism.settle(request)).toMatchObject({ reason: Reason.settlementPending, transaction: hash });
      await chain.rpc("evm_mine");
      expect(await mechanism.settle(request)).toEqual({ success: true, payer: chain.payer.address, transaction: hash, amount: 4242n });
      expect(await chain.minedCount()).toBe(minedBefore + 2);
    } finally {
      await automine(true);
    }
  });

  it("re-sends the recorded permit bytes when the node dropped them, then the transfer goes through", async () => {
    const request = await chain.pay({ value: 31n });
    await automine(false);
    let pending;
    try {
      pending = await mechanism.settle(request);
      expect(pending).toMatchObject({ reason: Reason.settlementPending });
      const permitHash = (await store.ledger.get(chain.ledgerKey(request)))!.priorTransactions![0]!.transaction;
      await chain.rpc("anvil_dropTransaction", [permitHash]);
      expect(await chain.rpc("eth_getTransactionByHash", [permitHash])).toBeNull();
      const retried = mechanism.settle(request);
      await waitForPool(2);
      await chain.rpc("evm_mine");
      const outcome = await retried;
      expect(outcome).toEqual({ success: true, payer: chain.payer.address, transaction: pending.transaction, amount: 31n });
      expect((await chain.client.getTransactionReceipt({ hash: permitHash as Hash })).status).toBe("success");
    } finally {
      await automine(true);
    }
  });

  it("retries the transfer, never the permit, when transferFrom reverts after the permit went through", async () => {
    const owner = privateKeyToAccount(devKey(9));
    await chain.mint(owner.address, 1000n);
    const request = await chain.pay({ account: owner, value: 1000n });
    const sink = privateKeyToAccount(devKey(11)).address;
    const minedBefore = await chain.minedCount();
    await automine(false);
    let first;
    try {
      const settling = mechanism.settle(request);
      await waitForPool(2);
      // The owner spends the funds first (higher tip): our permit goes through, our transferFrom reverts.
      await sendAs(owner.address, encodeFunctionData({ abi: erc20, functionName: "transfer", args: [sink, 1000n] }));
      await chain.rpc("evm_mine");
      first = await settling;
    } finally {
      await automine(true);
    }
    expect(first).toMatchObject({ success: false, reason: Reason.evmTransactionFailed });
    expect((first as { message: string }).message).toMatch(/not tried again/);
    expect(await chain.minedCount()).toBe(minedBefore + 2);
    expect(await chain.allowance(owner.address, chain.facilitator)).toBe(1000n); // left over, only we can use it

    // Funds back: the same payment settles with the leftover allowance; no second permit.
    await chain.mint(owner.address, 1000n);
    const second = await mechanism.settle(request);
    expect(second).toMatchObject({ success: true, amount: 1000n });
    expect(await chain.minedCount()).toBe(minedBefore + 3);
    const tx = await chain.client.getTransaction({ hash: second.transaction as Hash });
    expect(tx.input.slice(0, 10)).toBe("0x23b872dd"); // transferFrom
    expect(await chain.allowance(owner.address, chain.facilitator)).toBe(0n);
    expect(await mechanism.settle(request)).toMatchObject({ success: false, reason: Reason.duplicateSettlement });
  });

  it("sends a new transfer within the same settle when the reverted one can now go through", async () => {
    const owner = privateKeyToAccount(devKey(12));
    await chain.mint(owner.address, 500n);
    const request = await chain.pay({ account: owner, value: 500n });
    const sink = privateKeyToAccount(devKey(13));
    const minedBefore = await chain.minedCount();
    await automine(false);
    let outcome;
    try {
      const settling = mechanism.settle(request);
      await waitForPool(2);
      await sendAs(owner.address, encodeFunctionData({ abi: erc20, functionName: "transfer", args: [sink.address, 500n] }));
      // ... and the funds come back in the same block, after our transfer.
      await sendAs(sink.address, encodeFunctionData({ abi: erc20, functionName: "transfer", args: [owner.address, 500n] }), "last");
      await chain.rpc("evm_mine");
      await automine(true);
      outcome = await settling;
    } finally {
      await automine(true);
    }
    if (!outcome.success && outcome.reason === Reason.settlementPending) outcome = await mechanism.settle(request); // slow machine
    expect(outcome).toMatchObject({ success: true, amount: 500n });
    expect(await chain.minedCount()).toBe(minedBefore + 3); // permit, reverted transferFrom, transferFrom
    expect(await chain.balanceOf(owner.address)).toBe(0n);
  });
});
