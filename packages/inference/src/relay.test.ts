/** Replacing a relay transaction that a fee rise left behind: the client on anvil, and a worker anchoring through it (the fee rule: evm replacement.unit.test.ts). */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { keccak256, parseEventLogs, toHex, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { LmdbQueue } from "./lmdb-queue.ts";
import { SETTLEMENT_RELAY_ABI, type RelayCall } from "./relay.ts";
import { InferenceService } from "./service.ts";
import type { WorkerEvent } from "./worker.ts";
import { makeRecords, startTestWorld, waitFor, type TestWorld } from "./testing/world.ts";

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
    const service = new InferenceService({ queue: new LmdbQueue({ path }), validation: world.validation });
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
