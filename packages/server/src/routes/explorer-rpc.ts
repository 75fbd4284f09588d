/**
 * The explorer's JSON-RPC proxy, narrowed to what the page's verification reads: the relay's logs
 * within a bounded block range, the relay's and the TEE registry's own view functions (allowlisted by
 * selector, no state or block overrides), receipts, the chain id and head. Every forwarded call is rebuilt from the fields
 * checked here; nothing the caller sent beyond them reaches the node. The node's answer is read up to
 * a size cap and its errors reach the caller without anything that could name the node.
 */
import { isAddressEqual, isHex, toFunctionSelector, type Address } from "viem";

export const RPC_METHODS = ["eth_chainId", "eth_blockNumber", "eth_getLogs", "eth_call", "eth_getTransactionReceipt"] as const;

/** The relay's view functions the page calls (see explorer-assets/verify.js): selector -> signature and argument bytes. */
export const RELAY_READS: Readonly<Record<string, { signature: string; argBytes: number }>> = {
  [toFunctionSelector("anchoredAt(bytes32)")]: { signature: "anchoredAt(bytes32)", argBytes: 32 },
};

/** The TEE registry's view functions the page calls (see explorer-assets/tees.js). */
export const REGISTRY_READS: Readonly<Record<string, { signature: string; argBytes: number }>> = {
  [toFunctionSelector("getTee(bytes32)")]: { signature: "getTee(bytes32)", argBytes: 32 },
  [toFunctionSelector("measurementStatus(uint8,bytes32)")]: { signature: "measurementStatus(uint8,bytes32)", argBytes: 64 },
};

export type RpcPlan =
  | { kind: "forward"; method: string; params: unknown[] }
  | { kind: "refuse"; code: number; reason: string }
  /** The range names `latest`: call again with the chain's head. */
  | { kind: "needs-head" };

export interface RpcPlanOptions {
  /** Largest eth_getLogs range, in blocks, both ends included. */
  maxBlockRange: bigint;
  /** The chain's head, to resolve `latest` in a range. */
  head?: bigint;
  /** The TEERegistry, when the explorer shows TEEs: its REGISTRY_READS are forwarded too. */
  registry?: Address;
}

const METHOD_NOT_FOUND = -32601;
const INVALID_PARAMS = -32602;
const QUANTITY = /^0x[0-9a-fA-F]{1,16}$/;
const BYTES32 = /^0x[0-9a-fA-F]{64}$/;
const CALL_TAGS = ["latest", "earliest", "pending", "safe", "finalized"];
const LOG_FILTER_FIELDS = ["address", "topics", "fromBlock", "toBlock", "blockHash"];
const CALL_FIELDS = ["to", "data", "input"];

const refuse = (reason: string, code = INVALID_PARAMS): RpcPlan => ({ kind: "refuse", code, reason });
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
/** A caller's field name, quoted back short and plain. */
const fieldName = (k: string) => JSON.stringify(k.replace(/[^\w$-]/g, "?").slice(0, 32));

/** Whether `v` is exactly one address, `address`. */
const isAddressOf = (v: unknown, address: Address) => typeof v === "string" && isHex(v, { strict: true }) && v.length === 42 && isAddressEqual(v as Address, address);

/** What the proxy sends upstream for `call`, or why it will not. */
export function planRpcCall(call: unknown, relay: Address, opts: RpcPlanOptions): RpcPlan {
  const c = isObject(call) ? call : {};
  const method = c.method;
  if (typeof method !== "string" || !(RPC_METHODS as readonly string[]).includes(method)) {
    return refuse(`method not allowed here (allowed: ${RPC_METHODS.join(", ")})`, METHOD_NOT_FOUND);
  }
  if (c.params !== undefined && !Array.isArray(c.params)) return refuse("params must be an array");
  const params = (c.params ?? []) as unknown[];
  const isRelay = (v: unknown) => isAddressOf(v, relay);

  switch (method) {
    case "eth_chainId":
    case "eth_blockNumber":
      return params.length ? refuse(`${method} takes no parameters`) : { kind: "forward", method, params: [] };

    case "eth_getTransactionReceipt":
      if (params.length !== 1 || typeof params[0] !== "string" || !BYTES32.test(params[0])) return refuse("eth_getTransactionReceipt takes one 32-byte transaction hash");
      return { kind: "forward", method, params: [params[0]] };

    case "eth_call": {
      if (params.length > 2) return refuse("eth_call is forwarded without state or block overrides: [{to, data}, block] only");
      const [tx, block = "latest"] = params;
      if (!isObject(tx)) return refuse("eth_call takes a call object {to, data}");
      const extra = Object.keys(tx).find((k) => !CALL_FIELDS.includes(k));
      if (extra !== undefined) return refuse(`eth_call field ${fieldName(extra)} is not forwarded (only to and data)`);
      const target = isRelay(tx.to)
        ? { name: "relay", address: relay, reads: RELAY_READS }
        : opts.registry && isAddressOf(tx.to, opts.registry)
          ? { name: "TEE registry", address: opts.registry, reads: REGISTRY_READS }
          : undefined;
      if (!target) return refuse(opts.registry ? "eth_call is proxied only to the relay and the TEE registry" : "eth_call is proxied only to the relay");
      if (tx.data !== undefined && tx.input !== undefined && tx.data !== tx.input) return refuse("eth_call data and input differ");
      const data = tx.data ?? tx.input;
      const allowed = Object.values(target.reads).map((r) => r.signature).join(", ");
      if (typeof data !== "string" || !isHex(data, { strict: true }) || data.length < 10) return refuse(`eth_call is proxied only for the ${target.name}'s ${allowed}`);
      const read = target.reads[data.slice(0, 10).toLowerCase()];
      if (!read) return refuse(`eth_call is proxied only for the ${target.name}'s ${allowed}`);
      if (data.length !== 10 + read.argBytes * 2) return refuse(`${read.signature} takes exactly ${read.argBytes} bytes of arguments`);
      if (typeof block !== "string" || !(CALL_TAGS.includes(block) || QUANTITY.test(block))) {
        return refuse("eth_call's block must be a block number or tag (latest, earliest, pending, safe, finalized)");
      }
      return { kind: "forward", method, params: [{ to: target.address, data: data.toLowerCase() }, block] };
    }

    case "eth_getLogs": {
      if (params.length !== 1 || !isObject(params[0])) return refuse("eth_getLogs takes one filter object");
      const filter = params[0];
      const extra = Object.keys(filter).find((k) => !LOG_FILTER_FIELDS.includes(k));
      if (extra !== undefined) return refuse(`eth_getLogs filter field ${fieldName(extra)} is not forwarded`);
      if (!isRelay(filter.address)) return refuse("eth_getLogs is proxied only for the relay's address (one address, not a list)");
      const topics = checkTopics(filter.topics);
      if (typeof topics === "string") return refuse(topics);
      if (filter.blockHash !== undefined) {
        if (filter.fromBlock !== undefined || filter.toBlock !== undefined) return refuse("eth_getLogs takes blockHash or a block range, not both");
        if (typeof filter.blockHash !== "string" || !BYTES32.test(filter.blockHash)) return refuse("eth_getLogs blockHash must be 32-byte hex");
        return { kind: "forward", method, params: [{ address: relay, topics, blockHash: filter.blockHash }] };
      }
      const from = blockOf(filter.fromBlock);
      const to = blockOf(filter.toBlock);
      if (typeof from === "string" || typeof to === "string") return refuse(typeof from === "string" ? from : (to as string));
      if (from === HEAD && to === HEAD) return { kind: "forward", method, params: [{ address: relay, topics, fromBlock: "latest", toBlock: "latest" }] };
      if ((from === HEAD || to === HEAD) && opts.head === undefined) return { kind: "needs-head" };
      const first = from === HEAD ? opts.head! : from;
      const last = to === HEAD ? opts.head! : to;
      if (first > last) return refuse("eth_getLogs fromBlock is after toBlock");
      const span = last - first + 1n;
      if (span > opts.maxBlockRange) {
        return refuse(`eth_getLogs spans ${span} blocks; this proxy reads at most ${opts.maxBlockRange} at a time (ask for the block the relay's anchoredAt(root) names, or use your own node)`);
      }
      // Numbers, not `latest`: the range the node runs is the range checked here.
      return { kind: "forward", method, params: [{ address: relay, topics, fromBlock: toQuantity(first), toBlock: toQuantity(last) }] };
    }
  }
  return refuse("method not allowed here", METHOD_NOT_FOUND);
}

/** The refusal `planRpcCall` gives, if any (`needs-head` counts as acceptable). */
export function refuseRpc(call: unknown, relay: Address, opts: Partial<RpcPlanOptions> = {}): string | undefined {
  const plan = planRpcCall(call, relay, { maxBlockRange: opts.maxBlockRange ?? 1_000n, head: opts.head });
  return plan.kind === "refuse" ? plan.reason : undefined;
}

const HEAD = Symbol("head");

function blockOf(v: unknown): bigint | typeof HEAD | string {
  if (v === undefined || v === "latest" || v === "pending") return HEAD;
  if (v === "earliest") return 0n;
  if (typeof v === "string" && QUANTITY.test(v)) return BigInt(v);
  return "eth_getLogs fromBlock and toBlock must be block numbers, latest or earliest";
}

const toQuantity = (n: bigint) => `0x${n.toString(16)}`;

/** Up to four positions, each null, a 32-byte topic or a short list of them. */
function checkTopics(topics: unknown): (string | null | (string | null)[])[] | string {
  if (topics === undefined) return [];
  const shape = "eth_getLogs topics must be up to 4 entries, each null, a 32-byte topic or a list of up to 8 of them";
  if (!Array.isArray(topics) || topics.length > 4) return shape;
  const one = (t: unknown) => t === null || (typeof t === "string" && BYTES32.test(t));
  for (const t of topics) {
    if (Array.isArray(t) ? !(t.length >= 1 && t.length <= 8 && t.every(one)) : !one(t)) return shape;
  }
  return topics as (string | null | (string | null)[])[];
}

export type Forwarded =
  | { ok: true; answer: { result: unknown } | { error: { code: number; message: string } } }
  | { ok: false; kind: "too-large" | "unreachable" | "bad-answer"; detail: string };

/**
 * Sends one call upstream and reads the answer up to `maxBytes`; past that the request is aborted.
 * `detail` is for the operator's log (it may name the node); callers get a generic message.
 */
export async function forwardRpc(url: string, method: string, params: unknown[], opts: { maxBytes: number; timeoutMs: number }): Promise<Forwarded> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error(`no answer within ${opts.timeoutMs} ms`)), opts.timeoutMs);
  try {
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
      signal: controller.signal,
      redirect: "error",
    });
    const declared = Number(res.headers.get("content-length") ?? NaN);
    if (declared > opts.maxBytes) {
      controller.abort();
      return { ok: false, kind: "too-large", detail: `the node announced ${declared} bytes for ${method}` };
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    const reader = res.body?.getReader();
    for (let part = await reader?.read(); part && !part.done; part = await reader!.read()) {
      size += part.value.byteLength;
      if (size > opts.maxBytes) {
        controller.abort(); // closes the connection: nothing more is read from the node
        reader!.cancel().catch(() => undefined);
        return { ok: false, kind: "too-large", detail: `the node's answer to ${method} passed ${opts.maxBytes} bytes` };
      }
      chunks.push(part.value);
    }
    if (!res.ok) return { ok: false, kind: "bad-answer", detail: `the node answered HTTP ${res.status} to ${method}` };
    let body: unknown;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      return { ok: false, kind: "bad-answer", detail: `the node's answer to ${method} is not JSON` };
    }
    if (isObject(body) && "result" in body) return { ok: true, answer: { result: body.result } };
    if (isObject(body) && isObject(body.error)) {
      const code = Number.isInteger(body.error.code) ? (body.error.code as number) : -32603;
      return { ok: true, answer: { error: { code, message: String(body.error.message ?? "error") } } };
    }
    return { ok: false, kind: "bad-answer", detail: `the node's answer to ${method} is not JSON-RPC` };
  } catch (e) {
    return { ok: false, kind: "unreachable", detail: `${method}: ${(e as Error).message}${(e as { cause?: Error }).cause ? ` (${(e as { cause: Error }).cause.message})` : ""}` };
  } finally {
    clearTimeout(timer);
  }
}
