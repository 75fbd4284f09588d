/** Replacing a relay transaction that a fee rise left behind: the fee rule, the client on anvil, and a worker anchoring through it. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { keccak256, parseEventLogs, toHex, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { EmbeddedQueue } from "./embedded-queue.ts";
import { replacementFees, SETTLEMENT_RELAY_ABI, type RelayCall, type TxFees } from "./relay.ts";
import { InferenceService } from "./service.ts";
import type { WorkerEvent } from "./worker.ts";
import { makeRecords, startTestWorld, waitFor, type TestWorld } from "./testing/world.ts";

const eip1559 = (maxFeePerGas: number, maxPriorityFeePerGas: number): TxFees => ({ maxFeePerGas: String(maxFeePerGas), maxPriorityFeePerGas: String(maxPriorityFeePerGas) });
const legacy = (gasPrice: number): TxFees => ({ gasPrice: String(gasPrice) });

describe("replacementFees", () => {
  it.each<[string, TxFees, TxFees, TxFees | undefined]>([
    ["pays what the chain asks: wait", eip1559(100, 2), eip1559(100, 2), undefined],
    ["pays more than the chain asks: wait", eip1559(100, 2), eip1559(60, 1), undefined],
    ["base fee rose far: today's fees", eip1559(100, 2), eip1559(1000, 2), eip1559(1000, 3)],
    ["base fee rose a little: 12.5% over the old fees", eip1559(100, 8), eip1559(101, 8), eip1559(113, 9)],
    ["only the tip rose: both fields still rise", eip1559(100, 2), eip1559(100, 5), eip1559(113, 5)],
    ["a zero tip stays zero when nobody tips", eip1559(100, 0), eip1559(200, 0), eip1559(200, 0)],
    ["the cap never falls below the tip", eip1559(10, 10), eip1559(10, 40), eip1559(40, 40)],
    ["legacy, price rose: today's price", legacy(100), legacy(300), legacy(300)],
    ["legacy, price rose a little: 12.5% over", legacy(100), legacy(105), legacy(113)],
    ["legacy, price unchanged: wait", legacy(100), legacy(100), undefined],
    ["the fee market changed under it: leave it", legacy(100), eip1559(1000, 2), undefined],
  ])("%s", (_, stuck, now, expected) => {
    expect(replacementFees(stuck, now)).toEqual(expected);
  });

  it("every replacement clears a 10% bump on each field", () => {
    for (const [cap, tip] of [[1n, 1n], [7n, 3n], [1_000_000_007n, 999n], [2n ** 70n, 2n ** 40n]]) {
      const stuck = { maxFeePerGas: String(cap), maxPriorityFeePerGas: String(tip) };
      const next = replacementFees(stuck, { ...stuck, maxFeePerGas: String(cap! + 1n) }) as { maxFeePerGas: string; maxPriorityFeePerGas: string };
      expect(BigInt(next.maxFeePerGas) * 10n).toBeGreaterThanOrEqual(cap! * 11n);
      expect(BigInt(next.maxPriorityFeePerGas) * 10n).toBeGreaterThanOrEqual(tip! * 11n);
    }
  });
});

let world: TestWorld;
const dirs: string[] = [];

beforeAll(async () => {
  world = await startTestWorld();
});

afterAll(async () => {
  await world?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Makes the chain's base fee `factor` times what it is now, as a sudden rush of demand would. */
async function raiseBaseFee(factor: bigint): Promise<void> {
  const { baseFeePerGas } = await world.client.getBlock();
  await world.client.request({ method: "anvil_setNextBlockBaseFeePerGas", params: [toHex(baseFeePerGas! * factor)] } as never);
  await world.client.request({ method: "evm_mine", params: [] } as never);
}

const sendQuietly = (p: Promise<void>) => p.catch(() => undefined); // a pool may refuse an underpriced transaction outright

describe("RelayClient.replacement", () => {
  it("replaces a transaction left behind by a fee rise: same nonce, higher fees, the old hash listed; only one is ever mined", async () => {
    const relay = world.relay({ replaceAfterMs: 0 });
    const patient = world.relay(); // the default: a transaction gets a minute before it is replaced
    const call: RelayCall = { functionName: "settle", args: [keccak256(toHex("replace-in")), keccak256(toHex("replace-out"))] };
    const stuck = await relay.prepare(call);
    expect(await relay.replacement(call, stuck)).toBeUndefined(); // the chain asks no more than it pays

    await raiseBaseFee(50n);
    await sendQuietly(relay.broadcast(stuck));
    expect(await relay.outcome(stuck)).toEqual({ state: "pending" });
    expect(await patient.replacement(call, stuck)).toBeUndefined();

    const otherCall: RelayCall = { functionName: "settle", args: [call.args[1], call.args[0]] };
    await expect(relay.replacement(otherCall, stuck)).rejects.toMatchObject({ reason: "batch_inconsistent" }); // never a different call at this nonce
    const replacement = (await relay.replacement(call, stuck))!;
    expect(replacement).toMatchObject({ nonce: stuck.nonce, from: stuck.from, gas: stuck.gas, replaced: [stuck.hash] });
    const [oldCap, newCap] = [stuck.fees, replacement.fees].map((f) => BigInt((f as { maxFeePerGas: string }).maxFeePerGas));
    expect(newCap).toBeGreaterThan(oldCap! * 25n); // today's fees, not a token bump

    await relay.broadcast(replacement);
    const settled = await relay.waitSettled(replacement);
    expect(settled.state === "mined" && settled.receipt.transactionHash).toBe(replacement.hash);
    expect(await relay.outcome(stuck)).toEqual({ state: "dropped" }); // its nonce went to the replacement
    // A record that lists the mined transaction among those it replaced still finds it.
    const laterRecord = { ...stuck, hash: keccak256(toHex("never-sent")), replaced: [stuck.hash, replacement.hash] };
    const found = await relay.outcome(laterRecord);
    expect(found.state === "mined" && found.receipt.transactionHash).toBe(replacement.hash);
    expect(await relay.replacement(call, replacement)).toBeUndefined(); // it pays what the chain asks now

    const logs = await world.client.getLogs({ address: world.relayAddress, fromBlock: 0n });
    const events = parseEventLogs({ abi: SETTLEMENT_RELAY_ABI, logs, eventName: "Settlement" });
    expect(events.filter((e) => e.args.inputHash === call.args[0])).toHaveLength(1);
  });
});

describe("the worker", () => {
  it("anchors a batch whose transaction a fee rise left pending by replacing it, and emits its root once", async () => {
    const path = mkdtempSync(join(tmpdir(), "replace-"));
    dirs.push(path);
    const service = new InferenceService({ queue: new EmbeddedQueue({ path }), validation: world.validation });
    const events: WorkerEvent[] = [];
    let first: Hex | undefined;
    const relayer = privateKeyToAccount(world.relayerKey).address;
    const sentBefore = await world.client.getTransactionCount({ address: relayer });
    const worker = service.startWorker({
      relay: world.relay({ receiptTimeoutMs: 300, replaceAfterMs: 200 }),
      blobs: world.blobs(),
      batchSize: 3,
      batchTimeoutMs: 50,
      pollIntervalMs: 20,
      backoffBaseMs: 50,
      onEvent: (e) => events.push(e),
      async onStep(step, batch) {
        if (step !== "signed" || first) return;
        first = batch.tx!.hash;
        await raiseBaseFee(50n); // between signing and sending: the signed fees no longer buy a place in a block
      },
    });
    try {
      const accepted = (await service.submit(makeRecords(3, "replaced", { tee: world.tee }))).map((r) => ("id" in r ? r.id : "refused"));
      await waitFor(async () => (await Promise.all(accepted.map((id) => service.status(id as Hex)))).every((v) => v?.status === "anchored"), "anchored", 30_000);
      const view = (await service.status(accepted[0] as Hex))!;
      expect(events).toContainEqual(expect.objectContaining({ type: "replaced" }));
      expect(view.transactionHash).not.toBe(first);
      const receipt = await world.client.getTransactionReceipt({ hash: view.transactionHash! });
      expect(receipt.status).toBe("success");
      await expect(world.client.getTransactionReceipt({ hash: first! })).rejects.toThrow(/could not be found/);

      const logs = await world.client.getLogs({ address: world.relayAddress, fromBlock: 0n });
      const roots = parseEventLogs({ abi: SETTLEMENT_RELAY_ABI, logs, eventName: "BatchSettlement" }).filter((e) => e.args.merkleRoot === view.root);
      expect(roots).toHaveLength(1);
      expect(await world.client.getTransactionCount({ address: relayer })).toBe(sentBefore + 1); // one transaction mined for the batch
    } finally {
      await worker.stop();
      await service.close();
    }
  });
});
