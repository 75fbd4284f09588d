/**
 * Issue 11, items 6, 7 and 9, performed against real components: anvil with a real SettlementRelay,
 * the local Walrus-compatible service, the facilitator composed as `pnpm start` composes it, and a
 * small counting forwarder in front of anvil (a real HTTP hop that passes every call through and
 * counts what reaches the node).
 *
 *  6. An unreachable RPC whose URL carries an API key: the explorer's answers are generic and name
 *     neither the key nor the node; the log says what failed, without them either.
 *  7. Many anonymous batch-list requests cost one bounded scan of new blocks, not a walk from block 0
 *     each; the explorer has its own per-client rate limit; one client cannot hold every search slot.
 *  9. The RPC proxy forwards only the page's reads: eth_call to the relay with an allowlisted
 *     selector and nothing else (no state override, no other target, no extra field), eth_getLogs on
 *     the relay within a bounded range; the node's answer is cut at a size cap, the request too.
 * And, from "secure defaults": scraping /metrics does not read signer balances from the RPC each time.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, request, type IncomingMessage, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import vm from "node:vm";
import express from "express";
import { createPublicClient, createWalletClient, encodeFunctionData, http, keccak256, parseAbi, toHex, type Address, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deployContract, devKey, DevRole, localChain, refusingUrl, startAnvil, startWalrusService, type AnvilNode, type WalrusService } from "@facilitator/devnet";
import { composeServices, type Services } from "../packages/server/src/compose.ts";
import { loadConfig, type Config } from "../packages/server/src/config.ts";
import { createLogger } from "../packages/server/src/logger.ts";
import { explorerRoutes, type ExplorerLimits } from "../packages/server/src/routes/explorer.ts";

const CHAIN_ID = 84532;
const FAKE_KEY = "sk_live_4f9a2c7e1b8d6035aa71c2e9";
const RELAY_ABI = parseAbi([
  "function settleBatch(bytes32 merkleRoot, uint256 batchSize, bytes walrusBlobId)",
  "function settle(bytes32 inputHash, bytes32 outputHash)",
  "function anchoredAt(bytes32 merkleRoot) view returns (uint256)",
  "function hasRole(bytes32 role, address account) view returns (bool)",
]);
const h = (s: string) => keccak256(toHex(s));
const ZERO32: Hex = `0x${"0".repeat(64)}`;
type LogDestination = NonNullable<Parameters<typeof createLogger>[1]>;

let anvil: AnvilNode;
let walrus: WalrusService;
let walrusDir: string;
let relay: Address;
let deployBlock: bigint;
let upstream: CountingForwarder;
const cleanups: (() => Promise<unknown>)[] = [];

const relayerKey = devKey(DevRole.deployer);
const chain = () => localChain(CHAIN_ID, anvil.rpcUrl);
const publicClient = () => createPublicClient({ chain: chain(), transport: http(anvil.rpcUrl), pollingInterval: 50 });

async function send(functionName: "settleBatch" | "settle", args: readonly unknown[]): Promise<{ hash: Hex; blockNumber: bigint }> {
  const wallet = createWalletClient({ account: privateKeyToAccount(relayerKey), chain: chain(), transport: http(anvil.rpcUrl) });
  const hash = await wallet.writeContract({ address: relay, abi: RELAY_ABI, functionName, args } as never);
  const receipt = await publicClient().waitForTransactionReceipt({ hash, pollingInterval: 50 });
  if (receipt.status !== "success") throw new Error(`${functionName} reverted`);
  return { hash, blockNumber: receipt.blockNumber };
}
const anchor = (label: string, blobId = `blob-${label}`) => send("settleBatch", [h(label), 1n, toHex(blobId)]);
const mine = (blocks: number) => fetch(anvil.rpcUrl, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "anvil_mine", params: [toHex(blocks)] }) });

interface CountingForwarder {
  url: string;
  calls: { method: string; params: unknown }[];
  count(method: string): number;
  reset(): void;
}

/** A real HTTP hop in front of the node: every JSON-RPC call passes through to it unchanged, and is counted. */
async function countingForwarder(target: string): Promise<CountingForwarder> {
  const calls: { method: string; params: unknown }[] = [];
  const server = createServer(async (req, res) => {
    const body = await readBody(req);
    try {
      const parsed = JSON.parse(body) as unknown;
      for (const c of Array.isArray(parsed) ? parsed : [parsed]) if (c && typeof c.method === "string") calls.push({ method: c.method, params: c.params });
    } catch {
      // not JSON: forwarded all the same
    }
    const answer = await fetch(target, { method: "POST", headers: { "content-type": "application/json" }, body });
    res.writeHead(answer.status, { "content-type": "application/json" });
    res.end(Buffer.from(await answer.arrayBuffer()));
  });
  const url = await serve(server);
  return { url, calls, count: (m) => calls.filter((c) => c.method === m).length, reset: () => void calls.splice(0) };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

async function serve(server: Server, host = "127.0.0.1"): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  cleanups.push(
    () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(resolve);
      }),
  );
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

/** An explorer alone on an express app, as the compose mounts it. */
async function explorerApp(opts: { rpcUrl?: string; limits?: Partial<ExplorerLimits>; statusLookup?: () => Promise<undefined>; logLines?: string[] } = {}): Promise<string> {
  const app = express();
  app.use(
    "/explorer",
    explorerRoutes({
      relayAddress: relay,
      rpcUrl: opts.rpcUrl ?? upstream.url,
      chainId: CHAIN_ID,
      aggregatorUrl: walrus.aggregatorUrl,
      fromBlock: deployBlock,
      limits: opts.limits,
      statusLookup: opts.statusLookup,
      logger: { warn: (obj, msg) => void opts.logLines?.push(JSON.stringify({ ...obj, msg })) },
    }),
  );
  return serve(createServer(app));
}

/** A GET whose connection leaves from `localAddress`: another client, as far as req.ip can tell. */
function getFrom(url: string, localAddress = "127.0.0.1"): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { localAddress }, (res) => {
      readBody(res).then((text) => resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : undefined }), reject);
    });
    req.on("error", reject);
    req.end();
  });
}

const rpc = (url: string, method: string, params: unknown[] = [], id: unknown = 1) =>
  fetch(`${url}/explorer/api/rpc`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id, method, params }) });

beforeAll(async () => {
  anvil = await startAnvil({ chainId: CHAIN_ID });
  walrusDir = mkdtempSync(join(tmpdir(), "attacks-explorer-walrus-"));
  walrus = await startWalrusService({ dir: walrusDir });
  await mine(40); // the relay is not at block 1: a scan from 0 and a scan from its deployment differ
  const admin = privateKeyToAccount(relayerKey).address;
  relay = await deployContract({ rpcUrl: anvil.rpcUrl, chainId: CHAIN_ID, deployerKey: relayerKey, artifact: "SettlementRelay", args: [admin, [admin]] });
  deployBlock = await publicClient().getBlockNumber();
  upstream = await countingForwarder(anvil.rpcUrl);
  for (const label of ["one", "two", "three"]) await anchor(label);
}, 120_000);

afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await walrus?.stop();
  await anvil?.stop();
  if (walrusDir) rmSync(walrusDir, { recursive: true, force: true });
});

/** The facilitator as the CLI composes it, on `config` (embedded store in a temp dir). */
async function facilitator(config: Partial<Config>, destination: LogDestination): Promise<{ url: string; services: Services }> {
  const dataDir = mkdtempSync(join(tmpdir(), "attacks-explorer-"));
  const services = await composeServices(
    { ...loadConfig({}), port: 0, dataDir, reconcileAfterMs: 0, runWorker: false, relay: { network: "base-sepolia", address: relay }, walrus: { publisherUrl: walrus.publisherUrl, aggregatorUrl: walrus.aggregatorUrl, epochs: 1, permanent: true }, ...config },
    createLogger("info", destination),
    { pollingIntervalMs: 50 },
  );
  cleanups.push(async () => {
    await services.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return { url: await services.listen(), services };
}

describe("6. secrets in an answer: an unreachable RPC whose URL holds an API key", () => {
  const keyedUrl = `${refusingUrl}/v2/${FAKE_KEY}`;
  let url: string;
  const lines: string[] = [];

  beforeAll(async () => {
    // The log destination here does NOT scrub: the explorer must leave the key out of its lines by itself.
    ({ url } = await facilitator(
      { networkOverrides: [{ name: "base-sepolia", rpcUrl: keyedUrl }], relayFromBlock: deployBlock },
      { write: (line: string) => void lines.push(line) } as LogDestination,
    ));
  });

  const leaks = (text: string) => [FAKE_KEY, "/v2/", "127.0.0.1:2", "http://"].filter((s) => text.includes(s));

  it("answers /explorer/api/batches with a generic 502 naming neither the key nor the node", async () => {
    const res = await fetch(`${url}/explorer/api/batches`);
    const text = await res.text();
    expect(res.status).toBe(502);
    expect(JSON.parse(text)).toEqual({ error: "upstream_unavailable", message: "the chain or the batch store could not be read; try again later" });
    expect(leaks(text)).toEqual([]);
  });

  it("answers a search and a proxied call the same way", async () => {
    const search = await fetch(`${url}/explorer/api/search?q=${h("anything")}`);
    expect(search.status).toBe(502);
    expect(leaks(await search.text())).toEqual([]);
    const call = await rpc(url, "eth_blockNumber");
    const text = await call.text();
    expect(call.status).toBe(502);
    expect(JSON.parse(text).error.message).toBe("the node could not be read; try again later or use your own node");
    expect(leaks(text)).toEqual([]);
  });

  it("tells the operator what failed in the log, without the key or the URL", () => {
    const explorerLines = lines.filter((l) => l.includes('"explorer: '));
    expect(explorerLines.length).toBeGreaterThanOrEqual(3);
    expect(explorerLines.join("\n")).toMatch(/the batch list could not be read/);
    for (const l of explorerLines) expect(leaks(l)).toEqual([]);
    expect(lines.join("\n")).not.toContain(FAKE_KEY);
  });
});

describe("7. load amplification", () => {
  it("serves many concurrent anonymous batch lists with one scan of the chain, from the relay's start block", async () => {
    // Small scan steps, so that one scan is several eth_getLogs and fifty scans would be obvious.
    const url = await explorerApp({ limits: { batchScanBlockRange: 10n } });
    upstream.reset();
    const head = await publicClient().getBlockNumber();
    const answers = await Promise.all(Array.from({ length: 50 }, () => fetch(`${url}/explorer/api/batches?limit=200`).then(async (r) => ({ status: r.status, body: await r.json() }))));
    for (const a of answers) {
      expect(a.status).toBe(200);
      expect(a.body.batches.map((b: { root: Hex }) => b.root)).toEqual([h("three"), h("two"), h("one")]);
    }
    const scans = upstream.calls.filter((c) => c.method === "eth_getLogs").map((c) => (c.params as [{ fromBlock: Hex; toBlock: Hex }])[0]);
    // One scan: consecutive steps from the deployment block to the head, each at most 10 blocks.
    expect(scans.length).toBe(Math.ceil(Number(head - deployBlock + 1n) / 10));
    expect(BigInt(scans[0]!.fromBlock)).toBe(deployBlock);
    for (const s of scans) expect(BigInt(s.toBlock) - BigInt(s.fromBlock)).toBeLessThan(10n);
    expect(upstream.count("eth_blockNumber")).toBe(1);
    // Block times: one read per block listed, not per request.
    expect(upstream.count("eth_getBlockByHash")).toBe(3);

    // Another burst at once: answered from the list, the chain is not asked again.
    upstream.reset();
    await Promise.all(Array.from({ length: 50 }, () => fetch(`${url}/explorer/api/batches`)));
    expect(upstream.calls).toEqual([]);
  });

  it("refreshes with the new blocks only, at most once per period, and sees a new batch", async () => {
    const url = await explorerApp({ limits: { batchRefreshMs: 300, batchConfirmations: 4n } });
    await fetch(`${url}/explorer/api/batches`);
    const firstHead = await publicClient().getBlockNumber();
    await mine(30);
    await anchor("four");
    await new Promise((r) => setTimeout(r, 350));
    upstream.reset();
    const burst = await Promise.all(Array.from({ length: 30 }, () => fetch(`${url}/explorer/api/batches`).then((r) => r.json())));
    expect(burst.at(-1).batches[0].root).toBe(h("four"));
    const scans = upstream.calls.filter((c) => c.method === "eth_getLogs").map((c) => (c.params as [{ fromBlock: Hex }])[0]);
    expect(scans).toHaveLength(1);
    // From just under the last final block, not from the relay's deployment again.
    expect(BigInt(scans[0]!.fromBlock)).toBe(firstHead - 4n + 1n);
  });

  it("keeps search slots per client: a second search of the same client is refused, others still get theirs", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    // Stands in for the facilitator's record store, held open so that searches stay in their slots.
    const url = await explorerApp({ statusLookup: () => gate.then(() => undefined) });
    const q = `${url}/explorer/api/search?q=${h("nothing anchored")}`;
    const first = getFrom(q, "127.0.0.1");
    await new Promise((r) => setTimeout(r, 100));
    const second = await getFrom(q, "127.0.0.1");
    expect(second.status).toBe(429);
    expect(second.body.message).toMatch(/a search of yours is still running/);
    const others = ["127.0.0.2", "127.0.0.3", "127.0.0.4"].map((ip) => getFrom(q, ip));
    await new Promise((r) => setTimeout(r, 100));
    // Four clients hold the four slots; a fifth waits its turn, whoever it is.
    const fifth = await getFrom(q, "127.0.0.5");
    expect(fifth.status).toBe(429);
    expect(fifth.body.message).toMatch(/too many searches at once/);
    release();
    for (const answer of await Promise.all([first, ...others])) expect(answer.status).toBe(200);
    expect((await getFrom(q, "127.0.0.1")).status).toBe(200);
  });

  it("gives the explorer its own per-client rate limit in the composed facilitator, starting at SETTLEMENT_RELAY_FROM_BLOCK", async () => {
    const { url } = await facilitator(
      { networkOverrides: [{ name: "base-sepolia", rpcUrl: upstream.url }], relayFromBlock: deployBlock, explorerRateLimitPerMinute: 4 },
      { write: () => undefined } as LogDestination,
    );
    upstream.reset();
    expect((await getFrom(`${url}/explorer/api/batches`)).status).toBe(200);
    const scans = upstream.calls.filter((c) => c.method === "eth_getLogs").map((c) => (c.params as [{ fromBlock: Hex }])[0]);
    expect(BigInt(scans[0]!.fromBlock)).toBe(deployBlock);
    for (let i = 0; i < 3; i++) expect((await getFrom(`${url}/explorer/api/config`)).status).toBe(200);
    const limited = await getFrom(`${url}/explorer/api/batches`);
    expect(limited.status).toBe(429);
    expect(limited.body.error).toBe("rate_limited");
    expect((await getFrom(`${url}/explorer/api/config`, "127.0.0.2")).status).toBe(200);
    // The payment routes keep their own budget.
    expect((await getFrom(`${url}/supported`)).status).toBe(200);
  });
});

describe("9. the RPC proxy forwards only the page's reads", () => {
  let url: string;
  beforeAll(async () => {
    url = await explorerApp({ limits: { rpcMaxBlockRange: 20n } });
  });

  const anchoredAtData = (root: Hex) => encodeFunctionData({ abi: RELAY_ABI, functionName: "anchoredAt", args: [root] });
  /** Calls that reach the node, the chain head (read to resolve `latest` in a range) aside. */
  const reachedNode = () => upstream.calls.filter((c) => c.method !== "eth_blockNumber").length;
  const refused = async (method: string, params: unknown[], message: RegExp) => {
    const before = reachedNode();
    const res = await rpc(url, method, params, 7);
    const body = await res.json();
    expect(res.status).toBe(400);
    expect(body).toMatchObject({ jsonrpc: "2.0", id: 7 });
    expect(body.error.message).toMatch(message);
    expect(reachedNode()).toBe(before); // nothing reached the node
  };

  it("forwards anchoredAt(root) to the relay, rebuilt as [{to, data}, block]", async () => {
    upstream.reset();
    const res = await rpc(url, "eth_call", [{ to: relay.toLowerCase(), data: anchoredAtData(h("one")) }, "latest"]);
    const body = await res.json();
    expect(res.status).toBe(200);
    expect(BigInt(body.result)).toBeGreaterThan(deployBlock);
    expect(upstream.calls).toEqual([{ method: "eth_call", params: [{ to: relay, data: anchoredAtData(h("one")) }, "latest"] }]);
  });

  it("refuses eth_call with a state override, whatever it would run", async () => {
    const override = { [relay]: { code: "0x6000" }, "0x0000000000000000000000000000000000000001": { balance: "0xffffffffff" } };
    await refused("eth_call", [{ to: relay, data: anchoredAtData(h("one")) }, "latest", override], /without state or block overrides/);
    await refused("eth_call", [{ to: relay, data: anchoredAtData(h("one")) }, "latest", {}, {}], /without state or block overrides/);
    await refused("eth_call", [{ to: relay, data: anchoredAtData(h("one")) }, { blockHash: ZERO32 }], /block must be a block number or tag/);
  });

  it("refuses eth_call to another contract, with another selector, or with other fields", async () => {
    await refused("eth_call", [{ to: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", data: anchoredAtData(h("one")) }, "latest"], /only to the relay/);
    await refused("eth_call", [{ data: anchoredAtData(h("one")) }, "latest"], /only to the relay/);
    const hasRole = encodeFunctionData({ abi: RELAY_ABI, functionName: "hasRole", args: [ZERO32, relay] });
    await refused("eth_call", [{ to: relay, data: hasRole }, "latest"], /only for the relay's anchoredAt\(bytes32\)/);
    await refused("eth_call", [{ to: relay, data: "0x" }, "latest"], /only for the relay's anchoredAt/);
    await refused("eth_call", [{ to: relay, data: `${anchoredAtData(h("one"))}00` }, "latest"], /takes exactly 32 bytes/);
    await refused("eth_call", [{ to: relay, data: anchoredAtData(h("one")), from: relay, gas: "0xffffffff" }, "latest"], /field "from" is not forwarded/);
    await refused("eth_call", [{ to: relay, data: anchoredAtData(h("one")), stateOverride: {} }, "latest"], /field "stateOverride" is not forwarded/);
    await refused("eth_sendRawTransaction", ["0x00"], /method not allowed/);
    await refused("debug_traceCall", [{ to: relay }], /method not allowed/);
  });

  it("refuses eth_getLogs beyond the range cap or for another address, and forwards a bounded one as numbers", async () => {
    const head = await publicClient().getBlockNumber();
    await refused("eth_getLogs", [{ address: relay, fromBlock: "0x0", toBlock: "latest" }], /spans \d+ blocks; this proxy reads at most 20/);
    await refused("eth_getLogs", [{ address: relay, fromBlock: "earliest" }], /spans \d+ blocks/);
    await refused("eth_getLogs", [{ address: relay, fromBlock: toHex(head - 25n), toBlock: toHex(head) }], /spans 26 blocks/);
    await refused("eth_getLogs", [{ address: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", fromBlock: toHex(head), toBlock: toHex(head) }], /only for the relay's address/);
    await refused("eth_getLogs", [{ address: [relay, "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"] }], /only for the relay's address/);
    await refused("eth_getLogs", [{ fromBlock: toHex(head), toBlock: toHex(head) }], /only for the relay's address/);
    await refused("eth_getLogs", [{ address: relay, topics: ["0x1234"] }], /topics must be/);
    await refused("eth_getLogs", [{ address: relay, fromBlock: "safe" }], /block numbers, latest or earliest/);

    upstream.reset();
    const res = await rpc(url, "eth_getLogs", [{ address: relay, fromBlock: toHex(head - 19n) }]);
    expect(res.status).toBe(200);
    expect(Array.isArray((await res.json()).result)).toBe(true);
    expect(upstream.calls.find((c) => c.method === "eth_getLogs")!.params).toEqual([{ address: relay, topics: [], fromBlock: toHex(head - 19n), toBlock: toHex(head) }]);
  });

  it("cuts a node's answer past the size cap and says so, without relaying any of it", async () => {
    // Real logs from the node: 12 batches whose blob ids make the answer far larger than 4 KiB.
    const first = (await anchor("big-0", "b".repeat(300))).blockNumber;
    for (let i = 1; i < 12; i++) await anchor(`big-${i}`, "b".repeat(300));
    const small = await explorerApp({ limits: { rpcMaxResponseBytes: 4096 } });
    const res = await fetch(`${small}/explorer/api/rpc`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 3, method: "eth_getLogs", params: [{ address: relay, fromBlock: toHex(first), toBlock: toHex(first + 11n) }] }),
    });
    const body = await res.json();
    expect(res.status).toBe(502);
    expect(body).toEqual({ jsonrpc: "2.0", id: 3, error: { code: -32603, message: "the node's answer is larger than this proxy forwards (4096 bytes); use your own node" } });
  });

  it("stops reading a node that never stops answering", async () => {
    let sent = 0;
    let closed!: () => void;
    const connectionClosed = new Promise<void>((r) => (closed = r));
    const endless = createServer((req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      const chunk = Buffer.alloc(64 * 1024, 0x20); // JSON whitespace, forever
      const pump = () => {
        while (!res.destroyed && res.write(chunk)) sent += chunk.length;
      };
      res.on("drain", pump);
      res.on("error", () => undefined);
      req.socket.once("close", () => closed());
      pump();
    });
    const endlessUrl = await serve(endless);
    const proxy = await explorerApp({ rpcUrl: endlessUrl });
    const started = Date.now();
    const res = await rpc(proxy, "eth_chainId");
    expect(res.status).toBe(502);
    expect((await res.json()).error.message).toMatch(/larger than this proxy forwards \(1048576 bytes\)/);
    await connectionClosed;
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(sent).toBeLessThan(64 * 1024 * 1024); // the node was cut off, not read to exhaustion
  });

  it("refuses a request body over its cap", async () => {
    const res = await fetch(`${url}/explorer/api/rpc`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [], pad: "x".repeat(20_000) }),
    });
    expect(res.status).toBe(413);
    expect((await res.json()).error.message).toBe("request body exceeds the size limit");
  });

  it("still carries the page's own verification, in one block at a time", async () => {
    const source = readFileSync(new URL("../packages/server/src/routes/explorer-assets/verify.js", import.meta.url), "utf8");
    const context: Record<string, unknown> = { TextEncoder };
    vm.createContext(context);
    vm.runInContext(`${source}\nthis.ExplorerVerify = ExplorerVerify;`, context);
    const page = context.ExplorerVerify as {
      leafHash(leaf: object): Hex;
      verifyResult(result: object, opts: { rpc: (m: string, p: unknown[]) => Promise<unknown>; relay: string }): Promise<{ verified: boolean; checks: { name: string; ok: boolean; detail: string }[] }>;
    };
    const through = async (method: string, params: unknown[]) => {
      const body = await (await rpc(url, method, params)).json();
      if (body.error) throw new Error(`${method}: ${body.error.message}`);
      return body.result;
    };

    // A batch of one: its root is its leaf, the proof is empty (the leaf's fields are whatever the page encodes).
    const leaf = { version: 2, teeId: h("tee"), inputHash: h("in"), outputHash: h("out"), timestamp: "1700000000", settlementType: "settle-batch", metadataHash: ZERO32, teeSignature: `0x${"11".repeat(65)}` };
    const root = page.leafHash(leaf);
    const batch = await send("settleBatch", [root, 1n, toHex("blob-page")]);
    await mine(50); // the anchor is now far more than the proxy's 20-block range below the head
    const verdict = await page.verifyResult({ kind: "batch", inputHash: leaf.inputHash, outputHash: leaf.outputHash, root, proof: [], transactionHash: batch.hash, leaf }, { rpc: through, relay });
    expect(verdict.checks.map((c) => c.name)).toEqual(["leaf-hash", "proof", "on-chain-root", "anchored-at", "tx-success"]);
    expect(verdict.verified).toBe(true);

    const single = await send("settle", [h("single in"), h("single out")]);
    await mine(50);
    const singleVerdict = await page.verifyResult({ kind: "single", inputHash: h("single in"), outputHash: h("single out"), transactionHash: single.hash }, { rpc: through, relay });
    expect(singleVerdict).toMatchObject({ verified: true });

    // A leaf the relay never anchored: anchoredAt(root) is 0, so there is no block to look in, and no verdict.
    const unanchored = { ...leaf, inputHash: h("never anchored") };
    const stranger = await page.verifyResult({ kind: "batch", inputHash: unanchored.inputHash, outputHash: leaf.outputHash, root: page.leafHash(unanchored), proof: [], transactionHash: batch.hash, leaf: unanchored }, { rpc: through, relay });
    expect(stranger.verified).toBe(false);
    expect(stranger.checks.find((c) => c.name === "on-chain-root")).toMatchObject({ ok: false });
  });
});

describe("secure defaults: /metrics and the RPC", () => {
  it("reads signer balances once per period, however often /metrics is scraped", async () => {
    const { url } = await facilitator(
      {
        networks: ["base-sepolia"],
        networkOverrides: [{ name: "base-sepolia", rpcUrl: upstream.url }],
        evmKeys: [devKey(DevRole.facilitator)],
        relayFromBlock: deployBlock,
      },
      { write: () => undefined } as LogDestination,
    );
    upstream.reset();
    for (let i = 0; i < 5; i++) {
      const text = await (await fetch(`${url}/metrics`)).text();
      expect(text).toMatch(/x402_signer_balance_wei\{network="base-sepolia",address="0x[0-9a-fA-F]{40}"\} \d/);
    }
    expect(upstream.count("eth_getBalance")).toBe(1);
  });
});
