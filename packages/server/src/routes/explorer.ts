/**
 * The explorer: one self-contained page (inline JS and CSS, nothing fetched from outside the
 * machine) listing the relay's recent batches, a search by input hash or record id, and a Verify
 * button whose verdict is computed in the reader's browser (Keccak-256, leaf encoding, sorted-pair
 * Merkle fold, the relay's logs and `anchoredAt`) from chain data the reader may fetch through this
 * router's JSON-RPC proxy or from their own node. Mount with `app.use("/explorer", explorerRoutes(...))`.
 *
 * Every route answers anonymous callers on the RPC node that also settles payments, so each is
 * bounded (ExplorerLimits): the batch list and the searches are served from one index of the relay's
 * events, refreshed with new blocks only, one refresh at a time, every eth_getLogs on the relay's
 * address (explorer-batches.ts); a search reads the dumps of the newest batches from a cache kept by
 * blob id, so it reads no block and a dump at most once (explorer-dumps.ts), and holds one of a few
 * slots, one per client (an IPv6 client is its /64); the proxy forwards only the page's reads, rebuilt
 * and capped (explorer-rpc.ts). Failures reach callers as a generic answer; the detail goes to the
 * log, without the node's URL or key.
 *
 * With a TEE registry configured, a record's TEE is shown too (explorer-tees.ts): the registry's facts,
 * re-read and judged at the anchoring block in the browser, and its attestation document, hashed in the
 * browser and verified on this server by the auditor's code (tees.js says which is which).
 *
 * Why a hand-written Keccak rather than viem's ESM build served from node_modules: viem's browser
 * build imports @noble/* and abitype through bare specifiers, so serving it means an import map and
 * dozens of module files routed out of node_modules (version-pinned paths that move with every
 * install). The page needs one hash, one ABI encoding and one fold: about 150 lines, tested against
 * viem, inlined so the page stays a single file.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import express, { type ErrorRequestHandler, type Request, type RequestHandler, type Response, type Router } from "express";
import { isHex, type Address, type Hex } from "viem";
import { createAuditor, type Auditor } from "@facilitator/auditor";
import { scrubber, urlSecrets } from "../ops/log-scrub.ts";
import { clientKey } from "../ops/trust-proxy.ts";
import { BatchIndexWarming, RelayBatchIndex } from "./explorer-batches.ts";
import { DumpCache } from "./explorer-dumps.ts";
import { forwardRpc, planRpcCall } from "./explorer-rpc.ts";
import { search, type ExplorerLookup } from "./explorer-search.ts";
import { isTeeId, TeeViews, type ExplorerTeeRegistry } from "./explorer-tees.ts";

export type { ExplorerLookup, SearchResult } from "./explorer-search.ts";

export { planRpcCall, refuseRpc, RELAY_READS, RPC_METHODS } from "./explorer-rpc.ts";

export interface ExplorerOptions {
  relayAddress: Address;
  rpcUrl: string;
  chainId: number;
  aggregatorUrl: string;
  /** The TEERegistry and the attestation roots this facilitator trusts: records' TEEs are shown. */
  teeRegistry?: ExplorerTeeRegistry;
  /** The facilitator's record lookup (by record id or input hash), when it has one. */
  statusLookup?: (query: string) => Promise<ExplorerLookup | undefined>;
  /** First block to read events from: the relay's deployment block (default 0). */
  fromBlock?: bigint;
  /** Run before every explorer route (the compose wires a per-client rate limit here). */
  guards?: RequestHandler[];
  /** Where failures are told in full (scrubbed of URLs); anonymous callers get a generic answer. */
  logger?: { warn(obj: object, msg: string): void };
  limits?: Partial<ExplorerLimits>;
}

/** The explorer's caps; every one bounds what an anonymous caller can make the node do. */
export interface ExplorerLimits {
  /** Searches running at once, all clients together. */
  maxConcurrentSearches: number;
  /** Searches running at once for one client (`req.ip`, see TRUST_PROXY; an IPv6 client is its /64). */
  searchesPerClient: number;
  /** Newest batches a search reads the dumps of (each from the dump cache when it holds it). */
  searchMaxBatches: number;
  /** Newest individual settlements of the relay kept for searches. */
  searchMaxSingles: number;
  /** Dumps kept parsed, by blob id. */
  dumpCacheEntries: number;
  /** Bytes of dump content kept, all dumps together. */
  dumpCacheBytes: number;
  /** A dump that could not be read is not asked for again before this long (ms). */
  dumpRetryMs: number;
  /** Largest eth_getLogs range the RPC proxy forwards, in blocks. */
  rpcMaxBlockRange: bigint;
  /** Largest node answer the RPC proxy reads; past it the call is aborted. */
  rpcMaxResponseBytes: number;
  /** Largest request body the RPC proxy reads. */
  rpcMaxRequestBytes: number;
  /** Proxied calls in flight at once, all clients together. */
  rpcMaxInFlight: number;
  /** How long a proxied call may take. */
  rpcTimeoutMs: number;
  /** The batch list is refreshed from the chain at most this often (ms). */
  batchRefreshMs: number;
  /** Blocks per eth_getLogs when the batch list reads new blocks. */
  batchScanBlockRange: bigint;
  /** Most blocks one refresh reads (an index further behind, e.g. a relay start block far below the head, catches up over several). */
  batchRefreshMaxBlocks: bigint;
  /** Blocks after which a batch event is taken as final. */
  batchConfirmations: bigint;
  /** How long a batch-list request waits for a running refresh. */
  batchWaitMs: number;
  /** How long a TEE's view (registry entry, attestation verdict) is reused (ms). */
  teeCacheMs: number;
  /** TEE views kept at most. */
  teeCacheEntries: number;
}

export const DEFAULT_EXPLORER_LIMITS: ExplorerLimits = {
  maxConcurrentSearches: 4,
  searchesPerClient: 1,
  searchMaxBatches: 200,
  searchMaxSingles: 10_000,
  dumpCacheEntries: 512,
  dumpCacheBytes: 64 * 1024 * 1024,
  dumpRetryMs: 60_000,
  rpcMaxBlockRange: 1_000n,
  rpcMaxResponseBytes: 1024 * 1024,
  rpcMaxRequestBytes: 16 * 1024,
  rpcMaxInFlight: 16,
  rpcTimeoutMs: 15_000,
  batchRefreshMs: 5_000,
  batchScanBlockRange: 10_000n,
  batchRefreshMaxBlocks: 1_000_000n,
  batchConfirmations: 32n,
  batchWaitMs: 10_000,
  teeCacheMs: 30_000,
  teeCacheEntries: 1_000,
};

/** The largest page of the batch list (the index keeps at least this many batches, more when searchMaxBatches asks). */
const MAX_BATCH_PAGE = 200;

const asset = (name: string) => readFileSync(new URL(`./explorer-assets/${name}`, import.meta.url), "utf8");

export function explorerRoutes(opts: ExplorerOptions): Router {
  const router = express.Router();
  const page = buildPage();
  const limits = { ...DEFAULT_EXPLORER_LIMITS, ...opts.limits };
  const fromBlock = opts.fromBlock ?? 0n;
  // Failures are told in full to the operator only, and even there without the node's URL or its key.
  const scrub = scrubber([opts.rpcUrl, opts.aggregatorUrl].flatMap((u) => [...urlSecrets(u), hostOf(u)]));
  const report = (what: string, e: unknown) => opts.logger?.warn({ err: scrubText(scrub, e instanceof Error ? e.message : String(e)) }, `explorer: ${what}`);

  let auditor: Promise<Auditor> | undefined;
  const getAuditor = () => {
    auditor ??= createAuditor({
      rpcUrl: opts.rpcUrl,
      chainId: opts.chainId,
      relayAddress: opts.relayAddress,
      aggregatorUrl: opts.aggregatorUrl,
      fromBlock,
      blobIdCheck: "none",
    }).catch((e) => {
      auditor = undefined; // try again on the next request
      throw e;
    });
    return auditor;
  };
  const batches = new RelayBatchIndex({
    rpcUrl: opts.rpcUrl,
    chainId: opts.chainId,
    relay: opts.relayAddress,
    fromBlock,
    refreshMs: limits.batchRefreshMs,
    scanBlockRange: limits.batchScanBlockRange,
    confirmations: limits.batchConfirmations,
    keep: Math.max(MAX_BATCH_PAGE, limits.searchMaxBatches),
    keepSingles: limits.searchMaxSingles,
    maxBlocksPerRefresh: limits.batchRefreshMaxBlocks,
    waitMs: limits.batchWaitMs,
    rpcTimeoutMs: limits.rpcTimeoutMs,
  });
  const dumps = new DumpCache({
    aggregatorUrl: opts.aggregatorUrl,
    maxEntries: limits.dumpCacheEntries,
    maxBytes: limits.dumpCacheBytes,
    retryMs: limits.dumpRetryMs,
    timeoutMs: limits.rpcTimeoutMs,
    onUnreadable: (blobId, error) => report(`the dump of blob ${blobId} could not be used`, error),
  });

  const tees =
    opts.teeRegistry &&
    new TeeViews({ chain: async () => (await getAuditor()).chain, registry: opts.teeRegistry, aggregatorUrl: opts.aggregatorUrl, scrub: (s) => scrubText(scrub, s), cacheMs: limits.teeCacheMs, capacity: limits.teeCacheEntries });

  for (const guard of opts.guards ?? []) router.use(guard);

  router.get("/", (_req, res) => {
    res.set({ "content-type": "text/html; charset=utf-8", "content-security-policy": page.csp, "x-content-type-options": "nosniff", "cache-control": "no-store" });
    res.send(page.html);
  });

  router.get("/api/config", (_req, res) => {
    const teeRegistry = tees && { address: opts.teeRegistry!.address, rootsSha256: tees.rootsSha256 };
    res.json({ relayAddress: opts.relayAddress, chainId: opts.chainId, ...(teeRegistry ? { teeRegistry } : {}) });
  });

  router.get("/api/tees/:teeId", async (req, res) => {
    if (!tees) return void res.status(404).json({ error: "no_tee_registry", message: "this explorer has no TEE registry configured" });
    if (!isTeeId(req.params.teeId)) return void res.status(400).json({ error: "invalid_tee_id", message: "a teeId is 0x and 64 hex digits, not zero" });
    try {
      res.json(await tees.get(req.params.teeId));
    } catch (e) {
      report("a TEE could not be read", e);
      upstreamError(res);
    }
  });

  router.get("/api/batches", async (req, res) => {
    const limit = Math.min(MAX_BATCH_PAGE, Math.max(1, Number(req.query.limit) || 25));
    try {
      res.json({ batches: await batches.newest(limit) });
    } catch (e) {
      if (e instanceof BatchIndexWarming) return warmingUp(res);
      report("the batch list could not be read", e);
      upstreamError(res);
    }
  });

  // A search reads no block (the index does, for everyone) and up to searchMaxBatches dumps, each from the
  // cache when it holds it: a few searches at a time, and one at a time per client.
  let searching = 0;
  const searchingBy = new Map<string, number>();
  router.get("/api/search", async (req, res) => {
    const q = typeof req.query.q === "string" ? req.query.q.trim() : "";
    if (!isHex(q, { strict: true }) || q.length !== 66) {
      res.status(400).json({ error: "invalid_query", message: "q must be a 32-byte hex input hash or record id" });
      return;
    }
    const client = clientOf(req);
    const mine = searchingBy.get(client) ?? 0;
    if (mine >= limits.searchesPerClient || searching >= limits.maxConcurrentSearches) {
      const message = mine >= limits.searchesPerClient ? "a search of yours is still running; retry when it has finished" : "too many searches at once; retry in a moment";
      res.status(429).set("retry-after", "2").json({ error: "rate_limited", message });
      return;
    }
    searching++;
    searchingBy.set(client, mine + 1);
    try {
      const held = await batches.snapshot();
      res.json({ query: q, results: await search(await getAuditor(), opts.statusLookup, q as Hex, { ...held, batches: held.batches.slice(0, limits.searchMaxBatches) }, dumps) });
    } catch (e) {
      if (e instanceof BatchIndexWarming) return warmingUp(res);
      report("a search could not be completed", e);
      upstreamError(res);
    } finally {
      searching--;
      const left = (searchingBy.get(client) ?? 1) - 1;
      if (left > 0) searchingBy.set(client, left);
      else searchingBy.delete(client);
    }
  });

  // The chain head, read at most once a second, to resolve `latest` in an eth_getLogs range.
  let head: { at: number; value: Promise<bigint> } | undefined;
  const chainHead = () => {
    if (!head || Date.now() - head.at > 1_000) {
      const value = forwardRpc(opts.rpcUrl, "eth_blockNumber", [], { maxBytes: 1024, timeoutMs: limits.rpcTimeoutMs }).then((f) => {
        if (f.ok && "result" in f.answer && typeof f.answer.result === "string" && /^0x[0-9a-fA-F]{1,16}$/.test(f.answer.result)) return BigInt(f.answer.result);
        throw new Error(f.ok ? "eth_blockNumber answered no block number" : f.detail);
      });
      value.catch(() => {
        if (head?.value === value) head = undefined; // the next call asks again
      });
      head = { at: Date.now(), value };
    }
    return head.value;
  };

  let inFlight = 0;
  router.post("/api/rpc", express.json({ limit: limits.rpcMaxRequestBytes }), async (req, res) => {
    const call = req.body as { id?: unknown } | undefined;
    const id = rpcId(call?.id);
    const rpcError = (status: number, code: number, message: string) => void res.status(status).json({ jsonrpc: "2.0", id, error: { code, message } });
    const planning = { maxBlockRange: limits.rpcMaxBlockRange, registry: opts.teeRegistry?.address };
    let plan = planRpcCall(call, opts.relayAddress, planning);
    if (plan.kind === "needs-head") {
      try {
        plan = planRpcCall(call, opts.relayAddress, { ...planning, head: await chainHead() });
      } catch (e) {
        report("the chain head could not be read", e);
        return rpcError(502, -32603, GENERIC_NODE_ERROR);
      }
    }
    if (plan.kind === "refuse") return rpcError(400, plan.code, plan.reason);
    if (plan.kind !== "forward") return rpcError(502, -32603, GENERIC_NODE_ERROR);
    if (inFlight >= limits.rpcMaxInFlight) {
      res.set("retry-after", "1");
      return rpcError(429, -32005, "too many calls through this proxy at once; retry in a moment or use your own node");
    }
    inFlight++;
    try {
      const forwarded = await forwardRpc(opts.rpcUrl, plan.method, plan.params, { maxBytes: limits.rpcMaxResponseBytes, timeoutMs: limits.rpcTimeoutMs });
      if (!forwarded.ok) {
        report(`a proxied call failed (${forwarded.kind})`, forwarded.detail);
        if (forwarded.kind === "too-large") return rpcError(502, -32603, `the node's answer is larger than this proxy forwards (${limits.rpcMaxResponseBytes} bytes); use your own node`);
        return rpcError(502, -32603, GENERIC_NODE_ERROR);
      }
      if ("error" in forwarded.answer) {
        // The node's own refusal (e.g. "query returned more than 10000 results"), shortened and without anything that names it.
        const { code, message } = forwarded.answer.error;
        return rpcError(200, code, scrubText(scrub, message).slice(0, 200));
      }
      res.json({ jsonrpc: "2.0", id, result: forwarded.answer.result });
    } finally {
      inFlight--;
    }
  });

  router.use(explorerErrors(report));
  return router;
}

const GENERIC_NODE_ERROR = "the node could not be read; try again later or use your own node";

/** Who a search slot belongs to: the client's address (express's req.ip, which TRUST_PROXY governs), an IPv6 client by its /64. */
const clientOf = (req: Request) => clientKey(req.ip ?? req.socket.remoteAddress);

/** A JSON-RPC id echoed back: a number or a short string, else null. */
function rpcId(id: unknown): number | string | null {
  if (typeof id === "number" && Number.isFinite(id)) return id;
  if (typeof id === "string" && id.length <= 64) return id;
  return null;
}

const hostOf = (url: string): string => (URL.canParse(url) ? new URL(url).host : url);

/** URLs (with their keys) and known secret parts blanked from text meant for the log. */
function scrubText(scrub: (s: string) => string, text: string): string {
  return scrub(text).replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]+/gi, "[url]");
}

/** Body errors of the proxy answered as JSON-RPC errors, never as a stack page; anything else is logged. */
function explorerErrors(report: (what: string, e: unknown) => void): ErrorRequestHandler {
  return (err, _req, res, next) => {
    if (res.headersSent) return next(err);
    const tooLarge = err?.type === "entity.too.large";
    const status = tooLarge ? 413 : Number.isInteger(err?.status) && err.status >= 400 && err.status < 500 ? 400 : 500;
    const message = tooLarge ? "request body exceeds the size limit" : status === 400 ? "request body is not JSON" : "internal error";
    if (status === 500) report("unexpected error", err);
    res.status(status).json({ jsonrpc: "2.0", id: null, error: { code: tooLarge || status === 400 ? -32700 : -32603, message } });
  };
}

/** The index has not reached the chain's head yet (first requests after a start). */
function warmingUp(res: Response): void {
  res.status(503).set("retry-after", "5").json({ error: "warming_up", message: "the batch list is still being read from the chain; retry in a few seconds" });
}

/** What an anonymous caller learns of a failure upstream: that it happened, nothing about where. */
function upstreamError(res: Response): void {
  res.status(502).json({ error: "upstream_unavailable", message: "the chain or the batch store could not be read; try again later" });
}

/** The page with its scripts inlined, and a CSP that allows exactly those scripts. */
function buildPage(): { html: string; csp: string } {
  const verifyJs = asset("verify.js");
  const teesJs = asset("tees.js");
  const uiJs = asset("ui.js");
  const html = asset("page.html").replace("/*VERIFY_JS*/", () => verifyJs).replace("/*TEES_JS*/", () => teesJs).replace("/*UI_JS*/", () => uiJs);
  const hash = (s: string) => `'sha256-${createHash("sha256").update(s).digest("base64")}'`;
  const csp = [
    "default-src 'none'",
    `script-src ${hash(verifyJs)} ${hash(teesJs)} ${hash(uiJs)}`,
    "style-src 'unsafe-inline'",
    // 'self' for this router's API; http(s) so a reader can verify through their own node.
    "connect-src 'self' http: https:",
    "base-uri 'none'",
    "form-action 'none'",
  ].join("; ");
  return { html, csp };
}

