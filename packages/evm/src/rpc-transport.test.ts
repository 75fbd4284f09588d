import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { refusingUrl } from "@facilitator/devnet";
import {
  createPublicClient,
  encodeFunctionData,
  HttpRequestError,
  MethodNotFoundRpcError,
  parseAbi,
  TimeoutError,
  type PublicClient,
} from "viem";
import { isTransientRpcError, revertReason } from "./rpc-errors.ts";
import { batchingHttp } from "./rpc-transport.ts";
import { startTestChain, type TestChain } from "./testing/index.ts";

let chain: TestChain;

beforeAll(async () => {
  chain = await startTestChain();
});

afterAll(async () => {
  await chain?.stop();
});

/** What the node answers, once forwarded: passed on unchanged, rewritten, or never. */
type Rewrite = (answer: string) => { status: number; text: string } | "never";

/**
 * A proxy in front of the test chain's anvil that keeps each HTTP request body as sent, and can
 * rewrite the node's answer into what a misbehaving node or gateway would send.
 */
async function recordingProxy(rewrite?: Rewrite): Promise<{ url: string; bodies: unknown[]; authorizations: unknown[]; close(): Promise<void> }> {
  const bodies: unknown[] = [];
  const authorizations: unknown[] = [];
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString();
    bodies.push(JSON.parse(body));
    authorizations.push(req.headers.authorization);
    const upstream = await fetch(chain.anvil.rpcUrl, { method: "POST", headers: { "content-type": "application/json" }, body });
    const answer = rewrite ? rewrite(await upstream.text()) : { status: upstream.status, text: await upstream.text() };
    if (answer === "never") return; // the socket stays open, nothing comes back
    res.writeHead(answer.status, { "content-type": "application/json" }).end(answer.text);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    bodies,
    authorizations,
    close: () => new Promise((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
}

const clientOf = (url: string, opts: Parameters<typeof batchingHttp>[1] = {}) =>
  createPublicClient({ transport: batchingHttp(url, { retryCount: 0, ...opts }) }) as PublicClient;

const methodsOf = (body: unknown) => (Array.isArray(body) ? body.map((b) => b.method) : (body as { method: string }).method);

const receiveAbi = parseAbi([
  "function receiveWithAuthorization(address from, address to, uint256 value, uint256 validAfter, uint256 validBefore, bytes32 nonce, uint8 v, bytes32 r, bytes32 s)",
]);

describe("batchingHttp: batching", () => {
  it("sends the calls made in the same tick as one JSON-RPC batch and gives each call its own result", async () => {
    const proxy = await recordingProxy();
    try {
      const client = clientOf(proxy.url);
      const [chainId, balance, code] = await Promise.all([
        client.getChainId(),
        client.getBalance({ address: chain.facilitator }),
        client.getCode({ address: chain.asset }),
      ]);
      expect(proxy.bodies.map(methodsOf)).toEqual([["eth_chainId", "eth_getBalance", "eth_getCode"]]);
      expect(chainId).toBe(chain.network.chainId);
      expect(balance).toBe(await chain.client.getBalance({ address: chain.facilitator }));
      expect(code).toBe(await chain.client.getCode({ address: chain.asset }));
    } finally {
      await proxy.close();
    }
  });

  it("sends a lone call as a plain request, and calls of later ticks in their own requests", async () => {
    const proxy = await recordingProxy();
    try {
      const client = clientOf(proxy.url);
      expect(await client.getChainId()).toBe(chain.network.chainId);
      expect(await client.getBlockNumber({ cacheTime: 0 })).toBe(await chain.client.getBlockNumber({ cacheTime: 0 }));
      expect(proxy.bodies).toHaveLength(2);
      expect(proxy.bodies[0]).toMatchObject({ jsonrpc: "2.0", method: "eth_chainId" });
      expect(proxy.bodies[1]).toMatchObject({ jsonrpc: "2.0", method: "eth_blockNumber" });
    } finally {
      await proxy.close();
    }
  });

  it("splits a tick's calls into batches of at most maxBatchSize, each call still answered by its own response", async () => {
    const proxy = await recordingProxy();
    try {
      const client = clientOf(proxy.url, { maxBatchSize: 2 });
      const owners = [chain.payer.address, chain.payTo, chain.facilitator, chain.asset, "0x0000000000000000000000000000000000000001"] as const;
      const balances = await Promise.all(owners.map((address) => client.getBalance({ address })));
      expect(proxy.bodies.map((b) => (Array.isArray(b) ? b.length : 1))).toEqual([2, 2, 1]);
      expect(balances).toEqual(await Promise.all(owners.map((address) => chain.client.getBalance({ address }))));
    } finally {
      await proxy.close();
    }
  });
});

describe("batchingHttp: errors, per call", () => {
  it("rejects only the failing calls of a batch, each with the node's error for it", async () => {
    const proxy = await recordingProxy();
    try {
      const client = clientOf(proxy.url);
      const data = encodeFunctionData({
        abi: receiveAbi,
        args: [chain.payer.address, chain.payTo, 1n, 0n, 2n ** 40n, `0x${"11".repeat(32)}`, 27, `0x${"22".repeat(32)}`, `0x${"33".repeat(32)}`],
      });
      const [reverted, unknown, fine] = await Promise.allSettled([
        client.request({ method: "eth_call", params: [{ from: chain.facilitator, to: chain.asset, data }, "latest"] }),
        client.request({ method: "eth_noSuchMethod" as "eth_chainId" }),
        client.request({ method: "eth_chainId" }),
      ]);
      expect(proxy.bodies).toHaveLength(1);
      expect(reverted.status).toBe("rejected");
      const revert = (reverted as PromiseRejectedResult).reason;
      expect(revertReason(revert)).toBe("FiatTokenV2: caller must be the payee");
      expect(isTransientRpcError(revert)).toBe(false); // the node answered: a decision, not a transport failure
      expect(unknown.status === "rejected" && unknown.reason).toBeInstanceOf(MethodNotFoundRpcError);
      expect(fine).toEqual({ status: "fulfilled", value: `0x${chain.network.chainId!.toString(16)}` });
    } finally {
      await proxy.close();
    }
  });

  it("fails every call of a batch as transient when the HTTP request fails (503 from a gateway)", async () => {
    const proxy = await recordingProxy(() => ({ status: 503, text: "upstream unavailable" }));
    try {
      const client = clientOf(proxy.url);
      const results = await Promise.allSettled([client.getChainId(), client.getBalance({ address: chain.payer.address })]);
      for (const r of results) {
        expect(r.status).toBe("rejected");
        const e = (r as PromiseRejectedResult).reason;
        expect(e).toBeInstanceOf(HttpRequestError);
        expect((e as HttpRequestError).status).toBe(503);
        expect(isTransientRpcError(e)).toBe(true);
      }
    } finally {
      await proxy.close();
    }
  });

  it("gives every call the node's refusal of a whole batch", async () => {
    const refusal = JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32005, message: "batch limit exceeded" } });
    const proxy = await recordingProxy(() => ({ status: 200, text: refusal }));
    try {
      const client = clientOf(proxy.url);
      const results = await Promise.allSettled([client.getChainId(), client.getBlockNumber()]);
      for (const r of results) {
        const e = (r as PromiseRejectedResult).reason;
        expect(e).toMatchObject({ code: -32005 });
        expect(e.message).toContain("batch limit exceeded");
        expect(isTransientRpcError(e)).toBe(true);
      }
    } finally {
      await proxy.close();
    }
  });

  it("fails a call the node's batch answer leaves out as transient, and still answers the others", async () => {
    // Drops the first response of the list, as a broken node or gateway might.
    const proxy = await recordingProxy((text) => ({ status: 200, text: JSON.stringify((JSON.parse(text) as unknown[]).slice(1)) }));
    try {
      const client = clientOf(proxy.url);
      const [left, kept] = await Promise.allSettled([client.getChainId(), client.getBalance({ address: chain.payer.address })]);
      expect(left.status).toBe("rejected");
      expect((left as PromiseRejectedResult).reason).toBeInstanceOf(HttpRequestError);
      expect(isTransientRpcError((left as PromiseRejectedResult).reason)).toBe(true);
      expect(kept).toEqual({ status: "fulfilled", value: await chain.client.getBalance({ address: chain.payer.address }) });
    } finally {
      await proxy.close();
    }
  });

  it("fails with a transient HttpRequestError when the node refuses connections", async () => {
    const client = clientOf(refusingUrl);
    const e = await client.getChainId().catch((error: unknown) => error);
    expect(e).toBeInstanceOf(HttpRequestError);
    expect((e as HttpRequestError).status).toBeUndefined();
    expect(isTransientRpcError(e)).toBe(true);
  });

  it("gives up on a node that never answers with viem's TimeoutError, for every call of the batch", async () => {
    const proxy = await recordingProxy(() => "never");
    try {
      const client = clientOf(proxy.url, { timeoutMs: 300 });
      const results = await Promise.allSettled([client.getChainId(), client.getBlockNumber()]);
      for (const r of results) {
        expect((r as PromiseRejectedResult).reason).toBeInstanceOf(TimeoutError);
        expect(isTransientRpcError((r as PromiseRejectedResult).reason)).toBe(true);
      }
      expect(proxy.bodies).toHaveLength(1);
    } finally {
      await proxy.close();
    }
  });

  it("sends a URL's credentials as basic auth, and names the endpoint in its errors without them", async () => {
    const proxy = await recordingProxy(() => ({ status: 503, text: "no" }));
    try {
      const withCredentials = proxy.url.replace("http://", "http://user:s3cret@");
      const e = await clientOf(withCredentials).getChainId().catch((error: unknown) => error);
      expect(proxy.authorizations).toEqual([`Basic ${Buffer.from("user:s3cret").toString("base64")}`]);
      expect(e).toBeInstanceOf(HttpRequestError);
      expect((e as HttpRequestError).message).not.toContain("s3cret");
    } finally {
      await proxy.close();
    }
  });
});
