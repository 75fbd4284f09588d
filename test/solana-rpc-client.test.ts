/**
 * The mechanism's JSON-RPC client (packages/svm/src/chain.ts, written over node:http) answers as
 * @solana/kit's RPC client answered, on the real runtime: the same results, the same rejections
 * from simulations, the same errors for JSON-RPC errors, HTTP errors and timeouts; and calls made
 * together, sent as one JSON-RPC batch, each answered as if sent alone.
 */
import type { IncomingMessage } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSolanaRpc, getBase58Decoder, type Base64EncodedWireTransaction, type Blockhash, type Signature } from "@solana/kit";
import { listen, postJson, type Listening } from "@facilitator/server/testing";
import { createChainClient } from "../packages/svm/src/chain.ts";
import { simulationRejection } from "../packages/svm/src/mechanism.ts";
import { buildPaymentTx, startSolanaFixture, v1Request, type SolanaFixture } from "./helpers/solana.ts";

let fx: SolanaFixture;
beforeAll(async () => {
  fx = await startSolanaFixture();
});
afterAll(async () => {
  await fx?.stop();
});

/** What chain.ts sent through kit before: the reference for every answer below. */
const kitRpc = () => createSolanaRpc(fx.rpc.rpcUrl);
const kitSimulate = async (wire: string) => {
  const { value } = await kitRpc()
    .simulateTransaction(wire as Base64EncodedWireTransaction, { encoding: "base64", sigVerify: false, replaceRecentBlockhash: false, commitment: "confirmed" })
    .send();
  return { err: value.err, logs: value.logs };
};
/** kit read every integer as a BigInt; ours keeps numbers. */
const asNumbers = (v: unknown) => JSON.parse(JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? Number(x) : x)));
const rejection = (p: Promise<unknown>) => p.then(() => undefined, (e: Error) => ({ name: e.name, message: e.message }));

describe("simulate", () => {
  it.each([
    ["a valid payment", {}, false],
    ["a transfer of more than the payer holds", { amount: 10n ** 18n }, true],
    ["a transfer to an account that does not exist", { destination: "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin" as never }, true],
  ])("%s: kit's err and logs, so the same rejection", async (_name, o, fails) => {
    const wire = await buildPaymentTx(fx, o);
    const ours = await createChainClient(fx.rpc.rpcUrl, 5_000).simulate(wire);
    const kit = await kitSimulate(wire);
    expect(ours.err != null).toBe(fails);
    expect(ours.err).toEqual(asNumbers(kit.err));
    expect(ours.logs).toEqual(kit.logs);
    expect(simulationRejection(ours.err, ours.logs)).toEqual(simulationRejection(kit.err, kit.logs));
  });

  it("an expired blockhash: BlockhashNotFound, as kit read it", async () => {
    const wire = await buildPaymentTx(fx);
    fx.rpc.expireBlockhashes();
    const ours = await createChainClient(fx.rpc.rpcUrl, 5_000).simulate(wire);
    expect(ours.err).toBe("BlockhashNotFound");
    expect(ours.err).toEqual((await kitSimulate(wire)).err);
  });

  it("bytes that are no transaction: kit's JSON-RPC error", async () => {
    const ours = await rejection(createChainClient(fx.rpc.rpcUrl, 5_000).simulate("AAAA"));
    const kit = await rejection(kitSimulate("AAAA"));
    expect(ours).toBeDefined();
    expect(ours).toEqual(kit);
  });
});

describe("isBlockhashValid, status, send", () => {
  it("a blockhash: valid while recent, not after it expires, as kit read it", async () => {
    const { blockhash } = fx.rpc.latestBlockhash();
    const ours = createChainClient(fx.rpc.rpcUrl, 5_000);
    const kit = async () => (await kitRpc().isBlockhashValid(blockhash as Blockhash, { commitment: "confirmed" }).send()).value;
    expect(await ours.isBlockhashValid(blockhash)).toBe(true);
    expect(await kit()).toBe(true);
    fx.rpc.expireBlockhashes();
    expect(await ours.isBlockhashValid(blockhash)).toBe(false);
    expect(await kit()).toBe(false);
  });

  it("a signature: unknown, then landed after a settle, as kit read it", async () => {
    const ours = createChainClient(fx.rpc.rpcUrl, 5_000);
    const kit = async (signature: string) => {
      const s = (await kitRpc().getSignatureStatuses([signature as Signature], { searchTransactionHistory: true }).send()).value[0];
      return s ? { err: s.err, confirmationStatus: s.confirmationStatus } : null;
    };
    const unknown = getBase58Decoder().decode(new Uint8Array(64).fill(9));
    expect(await ours.status(unknown)).toBeNull();
    expect(await kit(unknown)).toBeNull();

    const settled = await fx.mechanism.settle(v1Request(fx, await buildPaymentTx(fx)));
    expect(settled).toMatchObject({ success: true });
    const landed = await ours.status(settled.transaction);
    expect(landed).toEqual({ err: null, confirmationStatus: expect.stringMatching(/^(confirmed|finalized)$/) });
    expect(landed).toEqual(asNumbers(await kit(settled.transaction)));
  });

  it("sending bytes that are no transaction: kit's JSON-RPC error", async () => {
    const ours = await rejection(createChainClient(fx.rpc.rpcUrl, 5_000).send("AAAA"));
    const kit = await rejection(kitRpc().sendTransaction("AAAA" as Base64EncodedWireTransaction, { encoding: "base64", skipPreflight: true, maxRetries: 0n }).send());
    expect(ours).toBeDefined();
    expect(ours).toEqual(kit);
  });
});

describe("a provider that fails", () => {
  // Stand-ins for a failing RPC provider (an overloaded one, a stalled one): the local node does neither.
  let server: Listening;
  let mode: "unavailable" | "silent" = "unavailable";
  let url = "";
  beforeAll(async () => {
    server = await listen((req, res) => {
      req.resume();
      if (mode === "unavailable") res.writeHead(503).end("busy");
      // silent: never answers
    });
    url = server.url;
  });
  afterAll(async () => {
    await server.close();
  });

  it("an HTTP error status: kit's error", async () => {
    mode = "unavailable";
    const ours = await rejection(createChainClient(url, 5_000).simulate("AAAA"));
    const kit = await rejection(createSolanaRpc(url).getSignatureStatuses([]).send());
    expect(ours).toEqual({ name: "SolanaError", message: "HTTP error (503): Service Unavailable" });
    expect(ours).toEqual(kit);
  });

  it("no answer within the bound: kit's timeout error", async () => {
    mode = "silent";
    const ours = await rejection(createChainClient(url, 200).status("1111"));
    const kit = await rejection(createSolanaRpc(url).getSignatureStatuses([]).send({ abortSignal: AbortSignal.timeout(200) }));
    expect(ours).toEqual({ name: "TimeoutError", message: "The operation was aborted due to timeout" });
    expect(ours).toEqual(kit);
  });

  it("nothing listening: the call fails and names why", async () => {
    const closed = await listen(() => undefined);
    await closed.close();
    await expect(createChainClient(closed.url, 5_000).isBlockhashValid("1111")).rejects.toThrow(/ECONNREFUSED/);
  });
});

describe("calls made together: one batch", () => {
  /**
   * A recording proxy in front of the local node (which takes batches, as Solana's RPC does):
   * `shape` may rewrite a batch's answer, to play providers that refuse batches or drop answers.
   */
  async function proxy(shape: (batch: unknown[], answer: unknown[]) => unknown = (_b, a) => a) {
    const bodies: unknown[] = [];
    const read = async (req: IncomingMessage) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      return JSON.parse(Buffer.concat(chunks).toString());
    };
    const { url, close } = await listen(async (req, res) => {
      const body = await read(req);
      bodies.push(body);
      const upstream = await postJson(fx.rpc.rpcUrl, body);
      const answer = await upstream.json();
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify(Array.isArray(body) ? shape(body, answer as unknown[]) : answer));
    });
    return { url, bodies, close };
  }

  /** Five different calls at once, one of them a JSON-RPC error; and each alone, for comparison. */
  async function mixed() {
    const valid = await buildPaymentTx(fx);
    const overdraw = await buildPaymentTx(fx, { amount: 10n ** 18n });
    const { blockhash } = fx.rpc.latestBlockhash();
    const unknown = getBase58Decoder().decode(new Uint8Array(64).fill(7));
    return (c: ReturnType<typeof createChainClient>) => [
      c.simulate(valid),
      c.simulate(overdraw),
      c.status(unknown),
      c.isBlockhashValid(blockhash),
      rejection(c.simulate("AAAA")),
    ];
  }

  it("go out as one request, and each gets the answer it gets alone", async () => {
    const calls = await mixed();
    const alone: unknown[] = [];
    for (const call of calls(createChainClient(fx.rpc.rpcUrl, 5_000))) alone.push(await call);
    const p = await proxy();
    try {
      const together = await Promise.all(calls(createChainClient(p.url, 5_000)));
      expect(together).toEqual(alone);
      expect((together[4] as { name: string }).name).toBe("SolanaError");
      expect(p.bodies).toHaveLength(1);
      expect(p.bodies[0]).toHaveLength(5);
    } finally {
      await p.close();
    }
  });

  it("a lone call goes out as a plain request; more than ten, as batches of ten at most", async () => {
    const p = await proxy();
    try {
      const client = createChainClient(p.url, 5_000);
      const { blockhash } = fx.rpc.latestBlockhash();
      expect(await client.isBlockhashValid(blockhash)).toBe(true);
      expect(await Promise.all(Array.from({ length: 23 }, () => client.isBlockhashValid(blockhash)))).toEqual(Array(23).fill(true));
      expect(p.bodies.map((b) => (Array.isArray(b) ? b.length : "single"))).toEqual(["single", 10, 10, 3]);
    } finally {
      await p.close();
    }
  });

  it("a provider that refuses batches: each call asked alone, and no batch again", async () => {
    const calls = await mixed();
    const alone: unknown[] = [];
    for (const call of calls(createChainClient(fx.rpc.rpcUrl, 5_000))) alone.push(await call);
    const p = await proxy(() => ({ jsonrpc: "2.0", error: { code: -32600, message: "batch requests are not supported" }, id: null }));
    try {
      const client = createChainClient(p.url, 5_000);
      expect(await Promise.all(calls(client))).toEqual(alone);
      await Promise.all(calls(client));
      expect(p.bodies.map((b) => (Array.isArray(b) ? "batch" : "single"))).toEqual(["batch", ...Array(10).fill("single")]);
    } finally {
      await p.close();
    }
  });

  it("an answer that leaves a call out: that call is asked again alone", async () => {
    const calls = await mixed();
    const alone: unknown[] = [];
    for (const call of calls(createChainClient(fx.rpc.rpcUrl, 5_000))) alone.push(await call);
    const p = await proxy((_batch, answer) => answer.slice(1));
    try {
      expect(await Promise.all(calls(createChainClient(p.url, 5_000)))).toEqual(alone);
      expect(p.bodies.map((b) => (Array.isArray(b) ? "batch" : "single"))).toEqual(["batch", "single"]);
    } finally {
      await p.close();
    }
  });
});
