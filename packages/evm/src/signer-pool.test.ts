import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { devKey } from "@facilitator/devnet";
import { parseEther, type PublicClient } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { FeeOracle } from "./fees.ts";
import { createEvmExactMechanism } from "./mechanism.ts";
import { sendRawTransaction } from "./send.ts";
import { EvmSigner, SignerPool } from "./signer-pool.ts";
import { CHAIN_ID, rpcRecorder, startTestChain, tempLedger, type RpcFault, type TempLedger, type TestChain } from "./testing/index.ts";

let chain: TestChain;
let store: TempLedger;

beforeAll(async () => {
  chain = await startTestChain();
  store = tempLedger();
});

afterAll(async () => {
  await store?.dispose();
  await chain?.stop();
});

const chainFor = (client: PublicClient) => ({ client, chainId: CHAIN_ID, fees: new FeeOracle(client) });

describe("signer nonces", () => {
  it("fills the hole of a nonce that was never sent, so later transactions are not stuck behind it", async () => {
    const key = devKey(24);
    const address = privateKeyToAccount(key).address;
    await chain.rpc("anvil_setBalance", [address, `0x${parseEther("1").toString(16)}`]);
    const c = chainFor(chain.client);
    const signer = new EvmSigner(key, c);
    const [hole, later] = [await signer.nonces.acquire(), await signer.nonces.acquire()];
    const tx = await signer.sign({ to: chain.payTo, data: "0x", gas: 21_000n, value: 1n }, await c.fees.quote(), later);
    signer.track(tx);
    expect(await sendRawTransaction(chain.client, tx.raw)).toEqual({ kind: "accepted" });
    expect(await chain.minedCount(address)).toBe(0); // queued behind the hole

    await signer.abandon(hole);
    const receipt = await chain.client.waitForTransactionReceipt({ hash: tx.hash, pollingInterval: 20, timeout: 5000 });
    expect(receipt.status).toBe("success");
    expect(await chain.minedCount(address)).toBe(2);
    expect(await signer.nonces.acquire()).toBe(2);
  });

  it("takes back the last nonce handed out instead of filling it", async () => {
    const signer = new EvmSigner(devKey(25), chainFor(chain.client));
    const n = await signer.nonces.acquire();
    await signer.abandon(n);
    expect(await signer.nonces.acquire()).toBe(n);
  });

  it("spreads concurrent work over the least busy signers", async () => {
    const pool = new SignerPool([devKey(1), devKey(2), devKey(3)], chainFor(chain.client));
    const seen: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const work = Array.from({ length: 6 }, () => pool.withSigner(async (s) => (seen.push(s.address), gate)));
    release();
    await Promise.all(work);
    const counts = new Map<string, number>();
    for (const a of seen) counts.set(a, (counts.get(a) ?? 0) + 1);
    expect([...counts.values()]).toEqual([2, 2, 2]);
  });
});

describe("sending through an unreliable RPC", () => {
  const settleThrough = async (fault: RpcFault) => {
    let injected = false;
    const proxy = await rpcRecorder(chain.anvil.rpcUrl, (methods) => {
      if (injected || !methods.includes("eth_sendRawTransaction")) return undefined;
      injected = true;
      return fault;
    });
    try {
      const mechanism = createEvmExactMechanism({
        networks: [{ ...chain.network, rpcUrl: proxy.url }],
        signers: [chain.facilitatorKey],
        ledger: store.ledger,
        receiptTimeoutMs: 3000,
        pollingIntervalMs: 20,
      });
      const minedBefore = await chain.minedCount();
      const outcome = await mechanism.settle(await chain.pay({ value: 9n }));
      const sends = proxy.requests.filter((m) => m.includes("eth_sendRawTransaction")).length;
      return { outcome, sends, newTxs: (await chain.minedCount()) - minedBefore };
    } finally {
      await proxy.close();
    }
  };

  it("re-sends the same bytes when the first send never reached the node", async () => {
    const { outcome, sends, newTxs } = await settleThrough("refuse");
    expect(outcome).toMatchObject({ success: true });
    expect(sends).toBe(2);
    expect(newTxs).toBe(1);
  });

  it("finds the receipt when a send got through but its answer was lost (no second signature)", async () => {
    const { outcome, sends, newTxs } = await settleThrough("lose-answer");
    expect(outcome).toMatchObject({ success: true });
    expect(sends).toBe(2);
    expect(newTxs).toBe(1);
  });
});
