/**
 * The explorer: one self-contained page (inline JS and CSS, nothing fetched from outside the
 * machine) listing the relay's recent batches, a search by input hash or record id, and a Verify
 * button whose verdict is computed in the reader's browser (Keccak-256, leaf encoding, sorted-pair
 * Merkle fold, the relay's logs and `anchoredAt`) from chain data the reader may fetch through this
 * router's JSON-RPC proxy or from their own node. Mount with `app.use("/explorer", explorerRoutes(...))`.
 *
 * Why a hand-written Keccak rather than viem's ESM build served from node_modules: viem's browser
 * build imports @noble/* and abitype through bare specifiers, so serving it means an import map and
 * dozens of module files routed out of node_modules (version-pinned paths that move with every
 * install). The page needs one hash, one ABI encoding and one fold: about 150 lines, tested against
 * viem, inlined so the page stays a single file.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import express, { type Response, type Router } from "express";
import { isAddressEqual, isHex, type Address, type Hex } from "viem";
import { createAuditor, type Auditor, type Located } from "@facilitator/auditor";

/**
 * What the facilitator's own records say about a record id or input hash: a claim the page checks.
 * The inference service's `RecordView` (`GET /inference/settlements/:id`) fits as it is.
 */
export interface ExplorerLookup {
  recordId?: string;
  /** RecordView's name for `recordId`. */
  id?: string;
  /** RecordView's lane: "settle-batch" is a batch record, the others are single. */
  settlementType?: string;
  /** queued | batched | anchored | failed, or whatever the facilitator calls it. */
  status?: string;
  kind?: "batch" | "single";
  inputHash?: Hex;
  outputHash?: Hex;
  root?: Hex;
  proof?: Hex[];
  transactionHash?: Hex;
  walrusBlobId?: string;
}

export interface ExplorerOptions {
  relayAddress: Address;
  rpcUrl: string;
  chainId: number;
  aggregatorUrl: string;
  /** The facilitator's record lookup (by record id or input hash), when it has one. */
  statusLookup?: (query: string) => Promise<ExplorerLookup | undefined>;
  /** First block to read events from (default 0). */
  fromBlock?: bigint;
}

export type SearchResult =
  | ({ source: "facilitator" | "chain"; kind: "batch"; recordId?: string; status?: string; inputHash?: Hex; outputHash?: Hex; root: Hex; proof: Hex[]; transactionHash?: Hex; blobId?: string } & {
      leaf?: Extract<Located, { kind: "batch" }>["leaf"];
    })
  | { source: "facilitator" | "chain"; kind: "single"; recordId?: string; status?: string; inputHash: Hex; outputHash: Hex; transactionHash: Hex }
  | { source: "facilitator"; kind: "pending"; recordId?: string; status?: string; inputHash?: Hex; outputHash?: Hex };

const asset = (name: string) => readFileSync(new URL(`./explorer-assets/${name}`, import.meta.url), "utf8");

const MAX_CONCURRENT_SEARCHES = 4;

/** JSON-RPC methods the proxy forwards (refuseRpc says what each may touch). */
const RPC_METHODS = new Set(["eth_chainId", "eth_blockNumber", "eth_getLogs", "eth_call", "eth_getTransactionReceipt"]);

export function explorerRoutes(opts: ExplorerOptions): Router {
  const router = express.Router();
  const page = buildPage();

  let auditor: Promise<Auditor> | undefined;
  const getAuditor = () => {
    auditor ??= createAuditor({
      rpcUrl: opts.rpcUrl,
      chainId: opts.chainId,
      relayAddress: opts.relayAddress,
      aggregatorUrl: opts.aggregatorUrl,
      fromBlock: opts.fromBlock,
      blobIdCheck: "none",
    }).catch((e) => {
      auditor = undefined; // try again on the next request
      throw e;
    });
    return auditor;
  };

  router.get("/", (_req, res) => {
    res.set({ "content-type": "text/html; charset=utf-8", "content-security-policy": page.csp, "x-content-type-options": "nosniff", "cache-control": "no-store" });
    res.send(page.html);
  });

  router.get("/api/config", (_req, res) => void res.json({ relayAddress: opts.relayAddress, chainId: opts.chainId }));

  router.get("/api/batches", async (req, res) => {
    const limit = Math.min(200, Math.max(1, Number(req.query.limit) || 25));
    try {
      res.json({ batches: await (await getAuditor()).listBatches({ limit }) });
    } catch (e) {
      upstreamError(res, e);
    }
  });

  // A search may read hundreds of dumps: a few at a time, the rest are asked to come back.
  let searching = 0;
  router.get("/api/search", async (req, res) => {
    const q = typeof req.query.q === "string" ? req.query.q.trim() : "";
    if (!isHex(q, { strict: true }) || q.length !== 66) {
      res.status(400).json({ error: "invalid_query", message: "q must be a 32-byte hex input hash or record id" });
      return;
    }
    if (searching >= MAX_CONCURRENT_SEARCHES) {
      res.status(429).set("retry-after", "2").json({ error: "rate_limited", message: "too many searches at once; retry in a moment" });
      return;
    }
    searching++;
    try {
      res.json({ query: q, results: await search(await getAuditor(), opts, q as Hex) });
    } catch (e) {
      upstreamError(res, e);
    } finally {
      searching--;
    }
  });

  router.post("/api/rpc", express.json({ limit: "16kb" }), async (req, res) => {
    const call = req.body as { jsonrpc?: string; id?: unknown; method?: unknown; params?: unknown };
    const refusal = refuseRpc(call, opts.relayAddress);
    if (refusal) {
      res.status(400).json({ jsonrpc: "2.0", id: call?.id ?? null, error: { code: -32601, message: refusal } });
      return;
    }
    try {
      const upstream = await fetch(opts.rpcUrl, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: call.id ?? 1, method: call.method, params: call.params ?? [] }),
        signal: AbortSignal.timeout(15_000),
      });
      res.status(upstream.ok ? 200 : 502).type("application/json").send(await upstream.text());
    } catch (e) {
      res.status(502).json({ jsonrpc: "2.0", id: call.id ?? null, error: { code: -32603, message: `the node could not be reached: ${(e as Error).message}` } });
    }
  });

  return router;
}

/** Only reads about the relay: the proxy is not an open door to the node. */
export function refuseRpc(call: { method?: unknown; params?: unknown } | undefined, relay: Address): string | undefined {
  if (!call || typeof call.method !== "string" || !RPC_METHODS.has(call.method)) return `method not allowed here (allowed: ${[...RPC_METHODS].join(", ")})`;
  const params = Array.isArray(call.params) ? call.params : [];
  const first = params[0] as Record<string, unknown> | undefined;
  const isRelay = (v: unknown) => typeof v === "string" && isHex(v) && v.length === 42 && isAddressEqual(v as Address, relay);
  if (call.method === "eth_getLogs" && !isRelay(first?.address)) return "eth_getLogs is proxied only for the relay's address";
  if (call.method === "eth_call" && !isRelay(first?.to)) return "eth_call is proxied only to the relay";
  return undefined;
}

async function search(auditor: Auditor, opts: ExplorerOptions, q: Hex): Promise<SearchResult[]> {
  const results: SearchResult[] = [];
  const claim = normaliseClaim(opts.statusLookup ? await opts.statusLookup(q).catch(() => undefined) : undefined);
  if (claim?.root) {
    // The facilitator's proof is shown as it was handed out; the leaf's fields come from the dump.
    const inBatch = await auditor.locate({ root: claim.root, inputHash: claim.inputHash ?? q, recordId: claim.recordId ?? q });
    const match = inBatch.find((l): l is Extract<Located, { kind: "batch" }> => l.kind === "batch" && (!claim.outputHash || l.leaf.outputHash === claim.outputHash.toLowerCase()));
    results.push({
      source: "facilitator",
      kind: "batch",
      recordId: claim.recordId ?? match?.recordId,
      status: claim.status,
      inputHash: claim.inputHash ?? match?.leaf.inputHash,
      outputHash: claim.outputHash ?? match?.leaf.outputHash,
      root: claim.root,
      proof: claim.proof ?? [],
      transactionHash: claim.transactionHash ?? match?.transactionHash,
      blobId: claim.walrusBlobId ?? match?.blobId,
      leaf: match?.leaf,
    });
  } else if (claim?.kind === "single" && claim.transactionHash && claim.inputHash && claim.outputHash) {
    results.push({ source: "facilitator", kind: "single", recordId: claim.recordId, status: claim.status, inputHash: claim.inputHash, outputHash: claim.outputHash, transactionHash: claim.transactionHash });
  } else if (claim) {
    results.push({ source: "facilitator", kind: "pending", recordId: claim.recordId, status: claim.status, inputHash: claim.inputHash, outputHash: claim.outputHash });
  }

  for (const found of await auditor.locate({ inputHash: q, recordId: q })) {
    if (found.kind === "single") {
      results.push({ source: "chain", kind: "single", inputHash: found.inputHash, outputHash: found.outputHash, transactionHash: found.transactionHash });
      continue;
    }
    const duplicate = results.some((r) => r.kind === "batch" && r.root.toLowerCase() === found.root.toLowerCase() && r.leaf?.inputHash === found.leaf.inputHash && r.proof.join() === found.proof.join());
    if (duplicate) continue;
    results.push({
      source: "chain",
      kind: "batch",
      recordId: found.recordId,
      inputHash: found.leaf.inputHash,
      outputHash: found.leaf.outputHash,
      root: found.root,
      proof: found.proof,
      transactionHash: found.transactionHash,
      blobId: found.blobId,
      leaf: found.leaf,
    });
  }
  return results;
}

function normaliseClaim(claim: ExplorerLookup | undefined): ExplorerLookup | undefined {
  if (!claim) return undefined;
  const kind = claim.kind ?? (claim.settlementType === undefined ? undefined : claim.settlementType === "settle-batch" ? "batch" : "single");
  return { ...claim, recordId: claim.recordId ?? claim.id, kind };
}

function upstreamError(res: Response, e: unknown): void {
  res.status(502).json({ error: "upstream_unavailable", message: `the chain or the aggregator could not be read: ${(e as Error).message.split("\n")[0]}` });
}

/** The page with both scripts inlined, and a CSP that allows exactly those scripts. */
function buildPage(): { html: string; csp: string } {
  const verifyJs = asset("verify.js");
  const uiJs = asset("ui.js");
  const html = asset("page.html").replace("/*VERIFY_JS*/", () => verifyJs).replace("/*UI_JS*/", () => uiJs);
  const hash = (s: string) => `'sha256-${createHash("sha256").update(s).digest("base64")}'`;
  const csp = [
    "default-src 'none'",
    `script-src ${hash(verifyJs)} ${hash(uiJs)}`,
    "style-src 'unsafe-inline'",
    // 'self' for this router's API; http(s) so a reader can verify through their own node.
    "connect-src 'self' http: https:",
    "base-uri 'none'",
    "form-action 'none'",
  ].join("; ");
  return { html, csp };
}

