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
 *
 * From the review of that work:
 *  - One anonymous search flooded the RPC (a walk of every relay event and up to 500 dumps per search,
 *    Settlement events asked of every contract): a search now reads no block (the explorer's index of
 *    the relay's events does, once, for everyone, every eth_getLogs on the relay's address) and each
 *    dump once (a cache by blob id), at most searchMaxBatches of them; an IPv6 client is its /64. The
 *    auditor asks for the relay's events only.
 *  - Anonymous GET /ready ran every check and listed each signer's address and balance: one run per
 *    15 s whatever the probes, and anonymous callers learn the status and the failing checks' names.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, request, type IncomingMessage, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import express from "express";
import { createPublicClient, createWalletClient, encodeFunctionData, http, keccak256, parseAbi, toHex, type Address, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAuditor } from "@facilitator/auditor";
import { CHAIN_IDS, deployContract, devKey, DevRole, localChain, refusingUrl, startAnvil, startWalrusService, type AnvilNode, type WalrusService } from "@facilitator/devnet";
import { buildBatchTree, type BatchTree } from "../packages/inference/src/merkle.ts";
import { recordId, type InferenceRecord } from "../packages/inference/src/records.ts";
import { signTeeRecord } from "../packages/inference/src/tee.ts";
import { composeServices, type Services } from "../packages/server/src/compose.ts";
import { loadConfig, type Config } from "../packages/server/src/config.ts";
import { createLogger } from "../packages/server/src/logger.ts";
import { explorerRoutes, type ExplorerLimits } from "../packages/server/src/routes/explorer.ts";
import { loadExplorerVerify } from "./helpers/explorer-page.ts";

const CHAIN_ID = CHAIN_IDS["base-sepolia"];
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

async function send(functionName: "settleBatch" | "settle", args: readonly unknown[], to: { address: Address; key: Hex } = { address: relay, key: relayerKey }): Promise<{ hash: Hex; blockNumber: bigint }> {
  const wallet = createWalletClient({ account: privateKeyToAccount(to.key), chain: chain(), transport: http(anvil.rpcUrl) });
  const hash = await wallet.writeContract({ address: to.address, abi: RELAY_ABI, functionName, args } as never);
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
async function explorerApp(
  opts: { rpcUrl?: string; aggregatorUrl?: string; limits?: Partial<ExplorerLimits>; statusLookup?: () => Promise<undefined>; logLines?: string[]; trustProxy?: string } = {},
): Promise<string> {
  const app = express();
  if (opts.trustProxy) app.set("trust proxy", opts.trustProxy);
  app.use(
    "/explorer",
    explorerRoutes({
      relayAddress: relay,
      rpcUrl: opts.rpcUrl ?? upstream.url,
      chainId: CHAIN_ID,
      aggregatorUrl: opts.aggregatorUrl ?? walrus.aggregatorUrl,
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
    const page = loadExplorerVerify();
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

/** A real HTTP hop in front of the Walrus aggregator: passes every request through, and counts the blobs read. */
async function countingAggregator(target: string): Promise<{ url: string; reads: string[]; reset(): void }> {
  const reads: string[] = [];
  const server = createServer(async (req, res) => {
    if (req.url?.startsWith("/v1/blobs/")) reads.push(decodeURIComponent(req.url.slice("/v1/blobs/".length)));
    const answer = await fetch(`${target}${req.url}`, { method: req.method });
    res.writeHead(answer.status, { "content-type": answer.headers.get("content-type") ?? "application/octet-stream" });
    res.end(Buffer.from(await answer.arrayBuffer()));
  });
  return { url: await serve(server), reads, reset: () => void reads.splice(0) };
}

describe("review: one anonymous search must not flood the RPC or the aggregator", () => {
  const teeKey = keccak256(toHex("attacks-explorer TEE key"));
  const tee = { teeId: keccak256(toHex("attacks-explorer-tee")), privateKey: teeKey };
  let stamp = 0;
  const record = (label: string): InferenceRecord =>
    signTeeRecord(tee, { inputHash: h(`search in ${label}`), outputHash: h(`search out ${label}`), settlementType: "settle-batch", teeTimestamp: String(1_700_000_000 + stamp++) });
  /** A real batch: its dump stored on the Walrus service, its root anchored by `to` (the relay unless told). */
  async function anchorDump(labels: string[], to?: { address: Address; key: Hex }, compactAbove?: number): Promise<{ records: InferenceRecord[]; tree: BatchTree; blobId: string; hash: Hex }> {
    const records = labels.map(record);
    const tree = buildBatchTree(records, records.map(recordId), new Date(1_700_000_000_000 + stamp++).toISOString(), { compactAbove });
    const put = await fetch(`${walrus.publisherUrl}/v1/blobs?epochs=5&permanent=true`, { method: "PUT", body: tree.dumpJson });
    const stored = (await put.json()) as { newlyCreated?: { blobObject: { blobId: string } }; alreadyCertified?: { blobId: string } };
    const blobId = stored.newlyCreated?.blobObject.blobId ?? stored.alreadyCertified!.blobId;
    const { hash } = await send("settleBatch", [tree.root, BigInt(records.length), toHex(blobId)], to);
    return { records, tree, blobId, hash };
  }

  let older: Awaited<ReturnType<typeof anchorDump>>;
  let newer: Awaited<ReturnType<typeof anchorDump>>;
  let forged: Awaited<ReturnType<typeof anchorDump>>;
  let single: { hash: Hex };
  let lookalike: { address: Address; key: Hex };
  let aggregator: Awaited<ReturnType<typeof countingAggregator>>;
  /** Every batch the relay anchored since its deployment (each names a blob: some real, some never stored). */
  let relayBlobs: Set<string>;
  const getLogsCalls = () => upstream.calls.filter((c) => c.method === "eth_getLogs").map((c) => (c.params as [{ address?: string; fromBlock: Hex; toBlock: Hex }])[0]);
  const search = (url: string, q: string, from = "127.0.0.1") => getFrom(`${url}/explorer/api/search?q=${q}`, from);

  beforeAll(async () => {
    older = await anchorDump(["older a", "older b"]);
    newer = await anchorDump(["newer a", "newer b", "newer c"]);
    single = await send("settle", [h("search single in"), h("search single out")]);
    // Another contract with the relay's code, whose admin and relayer is a stranger: it emits the same events.
    const strangerKey = devKey(DevRole.thirdParty);
    const stranger = privateKeyToAccount(strangerKey).address;
    lookalike = { key: strangerKey, address: await deployContract({ rpcUrl: anvil.rpcUrl, chainId: CHAIN_ID, deployerKey: strangerKey, artifact: "SettlementRelay", args: [stranger, [stranger]] }) };
    await send("settle", [h("search single in"), h("forged out")], lookalike);
    forged = await anchorDump(["forged a"], lookalike);
    aggregator = await countingAggregator(walrus.aggregatorUrl);
    const logs = await publicClient().getLogs({ address: relay, event: parseAbi(["event BatchSettlement(bytes32 indexed merkleRoot, uint256 batchSize, bytes walrusBlobId)"])[0], fromBlock: deployBlock, strict: true });
    relayBlobs = new Set(logs.map((l) => Buffer.from(l.args.walrusBlobId.slice(2), "hex").toString("utf8")));
  }, 60_000);

  it("answers many searches by many clients with one scan of the relay's events, every eth_getLogs naming the relay, and each dump read once", async () => {
    // Small scan steps, so that a scan per search (or per event type) would show.
    const url = await explorerApp({ aggregatorUrl: aggregator.url, limits: { batchScanBlockRange: 10n, batchRefreshMs: 60_000 } });
    const head = await publicClient().getBlockNumber();
    upstream.reset();
    aggregator.reset();

    const first = await search(url, older.records[1]!.inputHash);
    expect(first.status).toBe(200);
    expect(first.body.results).toEqual([
      expect.objectContaining({ source: "chain", kind: "batch", root: older.tree.root, proof: older.tree.proof(1), transactionHash: older.hash, blobId: older.blobId, recordId: recordId(older.records[1]!) }),
    ]);
    // The one scan: consecutive 10-block steps from the relay's deployment to the head, all on the relay's address.
    const scans = getLogsCalls();
    expect(scans.length).toBe(Math.ceil(Number(head - deployBlock + 1n) / 10));
    for (const scan of scans) expect(scan.address?.toLowerCase()).toBe(relay.toLowerCase());
    expect(new Set(upstream.calls.map((c) => c.method))).toEqual(new Set(["eth_chainId", "eth_blockNumber", "eth_getLogs"]));
    // Each dump the relay's batches name, once (those never stored included: a 404 is remembered too).
    expect(aggregator.reads.sort()).toEqual([...relayBlobs].sort());

    // Twenty more searches, each from another client, for records, ids and hashes nobody anchored: nothing reaches the node or the aggregator.
    upstream.reset();
    aggregator.reset();
    const queries = [newer.records[2]!.inputHash, recordId(newer.records[0]!), h("search single in"), forged.records[0]!.inputHash, older.records[0]!.inputHash];
    for (let i = 0; i < 20; i++) {
      const q = queries[i % queries.length] ?? h(`nobody ${i}`);
      expect((await search(url, i < queries.length ? q : h(`nobody ${i}`), `127.0.0.${10 + i}`)).status).toBe(200);
    }
    expect(upstream.calls).toEqual([]);
    expect(aggregator.reads).toEqual([]);
  });

  it("finds a record by id, and an individual settlement of the relay, never a lookalike's events", async () => {
    const url = await explorerApp({ aggregatorUrl: aggregator.url, limits: { batchRefreshMs: 60_000 } });
    const byId = await search(url, recordId(newer.records[2]!));
    expect(byId.body.results).toEqual([expect.objectContaining({ source: "chain", kind: "batch", root: newer.tree.root, proof: newer.tree.proof(2), inputHash: newer.records[2]!.inputHash })]);
    const singles = await search(url, h("search single in"));
    // The relay's settlement only: the lookalike's Settlement with the same input hash is not the relay's.
    expect(singles.body.results).toEqual([{ source: "chain", kind: "single", inputHash: h("search single in"), outputHash: h("search single out"), transactionHash: single.hash }]);
    // A batch the lookalike anchored, its dump genuine: not found.
    expect((await search(url, forged.records[0]!.inputHash)).body.results).toEqual([]);
    for (const scan of getLogsCalls()) expect(scan.address?.toLowerCase()).toBe(relay.toLowerCase());
  });

  it("reads only the new blocks and the new batch's dump when a batch is anchored", async () => {
    const url = await explorerApp({ aggregatorUrl: aggregator.url, limits: { batchRefreshMs: 200, batchConfirmations: 4n } });
    expect((await search(url, older.records[0]!.inputHash)).body.results).toHaveLength(1);
    const fresh = await anchorDump(["fresh a"]);
    await new Promise((r) => setTimeout(r, 250));
    upstream.reset();
    aggregator.reset();
    const found = await search(url, fresh.records[0]!.inputHash);
    expect(found.body.results).toEqual([expect.objectContaining({ source: "chain", kind: "batch", root: fresh.tree.root })]);
    expect(getLogsCalls()).toHaveLength(1);
    expect(aggregator.reads).toEqual([fresh.blobId]);
  });

  it("reads at most searchMaxBatches dumps in one search, the newest", async () => {
    const url = await explorerApp({ aggregatorUrl: aggregator.url, limits: { searchMaxBatches: 2, batchRefreshMs: 60_000 } });
    const latest = await anchorDump(["latest a"]);
    aggregator.reset();
    expect((await search(url, older.records[0]!.inputHash)).body.results).toEqual([]); // older than the two newest batches
    expect(aggregator.reads.length).toBeLessThanOrEqual(2);
    expect((await search(url, latest.records[0]!.inputHash)).body.results).toEqual([expect.objectContaining({ root: latest.tree.root })]);
    expect(aggregator.reads.length).toBeLessThanOrEqual(2);
  });

  it("reads at most batchRefreshMaxBlocks blocks for any one request while the index catches up from far below the head", async () => {
    const url = await explorerApp({ aggregatorUrl: aggregator.url, limits: { batchScanBlockRange: 10n, batchRefreshMaxBlocks: 50n, batchRefreshMs: 0, batchWaitMs: 5_000 } });
    upstream.reset();
    const answers: number[] = [];
    for (let i = 0; i < 100 && answers.at(-1) !== 200; i++) {
      const before = getLogsCalls().length;
      answers.push((await search(url, older.records[0]!.inputHash, `127.0.1.${i}`)).status);
      expect(getLogsCalls().length - before).toBeLessThanOrEqual(5); // 50 blocks in 10-block steps
    }
    // Warming up (503) until the index reached the head, then answered.
    expect(answers.at(-1)).toBe(200);
    expect(new Set(answers.slice(0, -1))).toEqual(new Set([503]));
    for (const scan of getLogsCalls()) expect(scan.address?.toLowerCase()).toBe(relay.toLowerCase());
  });

  it("counts an IPv6 client by its /64: another address of the same /64 gets no second search slot", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    // Behind a trusted balancer on loopback, which names each client in X-Forwarded-For.
    const url = await explorerApp({ aggregatorUrl: aggregator.url, trustProxy: "loopback", statusLookup: () => gate.then(() => undefined) });
    const from = (address: string) =>
      fetch(`${url}/explorer/api/search?q=${h("ipv6 client")}`, { headers: { "x-forwarded-for": address } }).then(async (r) => ({ status: r.status, body: await r.json() }));
    const holding = from("2001:db8:1:2::1");
    await new Promise((r) => setTimeout(r, 100));
    // (Were it given a slot, it would wait on the gate: the race says so instead of hanging.)
    const sameNet = await Promise.race([from("2001:db8:1:2:ffff:ffff:ffff:fffe"), new Promise<{ status: string; body: { message?: string } }>((r) => setTimeout(() => r({ status: "holding a slot", body: {} }), 3_000))]);
    expect(sameNet.status).toBe(429);
    expect(sameNet.body.message).toMatch(/a search of yours is still running/);
    const otherNet = from("2001:db8:1:3::1");
    release();
    expect((await holding).status).toBe(200);
    expect((await otherNet).status).toBe(200);
  });

  it("the auditor asks for the relay's Settlement events only, and finds the relay's", async () => {
    const auditor = await createAuditor({ rpcUrl: upstream.url, chainId: CHAIN_ID, relayAddress: relay, aggregatorUrl: aggregator.url, fromBlock: deployBlock, blobIdCheck: "none" });
    upstream.reset();
    const found = await auditor.locate({ inputHash: h("search single in") });
    expect(found).toEqual([{ kind: "single", event: "Settlement", inputHash: h("search single in"), outputHash: h("search single out"), transactionHash: single.hash, blockNumber: expect.any(String) }]);
    const report = await auditor.verifyInference({ inputHash: h("search single in"), outputHash: h("search single out") });
    expect(report.settlement).toMatchObject({ kind: "Settlement", transactionHash: single.hash, emitter: relay });
    // The lookalike's event with the same input hash (and its own output hash) is not even asked for.
    const lookalikeOnly = await auditor.verifyInference({ inputHash: h("search single in"), outputHash: h("forged out") });
    expect(lookalikeOnly.verified).toBe(false);
    expect(lookalikeOnly.settlement).toBeUndefined();
    const scans = getLogsCalls();
    expect(scans.length).toBeGreaterThan(0);
    for (const scan of scans) expect(scan.address?.toLowerCase()).toBe(relay.toLowerCase());
  });

  it("finds a record in a batch stored as a compact dump (values only: the explorer rebuilds the tree)", async () => {
    const compact = await anchorDump(["compact a", "compact b", "compact c"], undefined, 0);
    const url = await explorerApp({ aggregatorUrl: aggregator.url });
    expect(JSON.parse(compact.tree.dumpJson).tree.format).toBe("compact-v1");
    const found = await search(url, compact.records[1]!.inputHash);
    expect(found.body.results).toEqual([expect.objectContaining({ source: "chain", kind: "batch", root: compact.tree.root, proof: compact.tree.proof(1), recordId: recordId(compact.records[1]!) })]);
  });
});

describe("review: anonymous GET /ready must not load the RPC or show the signers", () => {
  const METRICS_KEY = "metrics-scrape-key-9d41";
  let url: string;
  const signer = privateKeyToAccount(devKey(DevRole.facilitator)).address;

  beforeAll(async () => {
    ({ url } = await facilitator(
      {
        networks: ["base-sepolia"],
        networkOverrides: [{ name: "base-sepolia", rpcUrl: upstream.url }],
        evmKeys: [devKey(DevRole.facilitator)],
        relayFromBlock: deployBlock,
        metricsApiKey: METRICS_KEY,
      },
      { write: () => undefined } as LogDestination,
    ));
  });

  it("runs the checks once for fifty anonymous probes, and tells them the status only", async () => {
    upstream.reset();
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => getFrom(`${url}/ready`, `127.0.0.${1 + (i % 20)}`)));
    for (const a of answers) expect(a).toEqual({ status: 200, body: { status: "ready" } });
    expect(upstream.count("eth_getBalance")).toBe(1);
    expect(upstream.count("eth_chainId")).toBeLessThanOrEqual(1);
    const again = await Promise.all(Array.from({ length: 50 }, () => fetch(`${url}/ready`).then((r) => r.text())));
    for (const text of again) for (const leak of [signer, signer.toLowerCase(), "wei", "http://", "127.0.0.1"]) expect(text).not.toContain(leak);
    expect(upstream.count("eth_getBalance")).toBe(1);
  });

  it("gives the details to a caller with METRICS_API_KEY, from the same report", async () => {
    upstream.reset();
    const res = await fetch(`${url}/ready`, { headers: { authorization: `Bearer ${METRICS_KEY}` } });
    const body = await res.json();
    expect(res.status).toBe(200);
    expect(body.checks).toContainEqual({ name: "gas base-sepolia signer 1", ok: true, detail: expect.stringMatching(new RegExp(`^${signer}: \\d+ wei$`)) });
    expect(body.checks).toContainEqual({ name: "rpc base-sepolia", ok: true, detail: "chain id 84532" });
    expect(JSON.stringify(body)).not.toContain(upstream.url);
    expect(upstream.calls).toEqual([]);
  });
});
