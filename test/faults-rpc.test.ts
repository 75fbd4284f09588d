/**
 * The chain's RPC node becomes unreachable and comes back. Restarting anvil would lose the chain, so
 * a proxy sits between the facilitator process and the node and is cut ("refuse": connections reset),
 * silenced ("hang": requests never answered) and restored.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { privateKeyToAccount } from "viem/accounts";
import { devKey, DevRole, waitFor } from "@facilitator/devnet";
import { spawnFacilitator, startProcessWorld, stopAll, type FacilitatorProcess, type ProcessWorld } from "./helpers/processes.ts";
import { startFaultProxy, type FaultProxy } from "./helpers/fault-proxy.ts";
import { postForAnswer } from "./helpers/http.ts";
import { evmPaymentBody } from "./helpers/payments.ts";
import { chainView } from "./helpers/chain.ts";

const KEY = devKey(DevRole.facilitator);
const SIGNER = privateKeyToAccount(KEY).address;
const RECEIPT_MS = 2_000;
/** The facilitator's own limit on one JSON-RPC request (packages/evm mechanism.ts `rpcTimeoutMs` default). */
const RPC_TIMEOUT_MS = 10_000;
/**
 * How long an answer may take while the node misbehaves: one RPC timeout (verify), or the receipt
 * bound plus one RPC timeout (settle), plus 5 s of slack for a loaded machine. A caller holding the
 * request open longer than that is what "bounded" rules out.
 */
const VERIFY_BOUND_MS = RPC_TIMEOUT_MS + 5_000;
const SETTLE_BOUND_MS = RECEIPT_MS + RPC_TIMEOUT_MS + 5_000;

let pw: ProcessWorld;
let proxy: FaultProxy;
let api: FacilitatorProcess;
let chain: ReturnType<typeof chainView>;

beforeAll(async () => {
  pw = await startProcessWorld();
  proxy = await startFaultProxy(pw.chain.rpcUrl);
  chain = chainView(pw.chain); // straight to the node: the test's own view is never cut
  api = await spawnFacilitator({
    name: "api",
    role: "api",
    env: pw.env({ evmKeys: [KEY], runWorker: false, receiptTimeoutMs: RECEIPT_MS, rpcUrls: { "base-sepolia": proxy.url } }),
  });
});

afterAll(async () => {
  await stopAll([api]);
  await proxy?.stop();
  await pw?.stop();
});

/** An answer that does not come within the bound comes back as status 0 (the caller gave up). */
const post = (path: "/verify" | "/settle", body: unknown) =>
  postForAnswer(`${api.url}${path}`, body, { timeoutMs: path === "/verify" ? VERIFY_BOUND_MS : SETTLE_BOUND_MS });

describe("the RPC node unreachable", () => {
  it("verify answers isValid:false with unexpected_verify_error (HTTP 200) while the node refuses connections", async () => {
    const p = await evmPaymentBody(pw.chain, 1_000n);
    proxy.setMode("refuse");
    try {
      const a = await post("/verify", p.body);
      expect(a.status).toBe(200);
      expect(a.body).toMatchObject({ isValid: false, invalidReason: "unexpected_verify_error" });
    } finally {
      proxy.setMode("pass");
    }
    expect((await post("/verify", p.body)).body).toMatchObject({ isValid: true });
  });

  // BUG (packages/evm/src/mechanism.ts, the viem `http` transport): the 10 s per-request timeout is
  // retried by viem's default retryCount 3, so one chain read against a silent node takes about 41 s.
  it("verify answers within one RPC timeout, with a reason, while the node hangs", async () => {
    const p = await evmPaymentBody(pw.chain, 1_000n);
    proxy.setMode("hang");
    try {
      const a = await post("/verify", p.body);
      expect(a.status).toBe(200);
      expect(a.body).toMatchObject({ isValid: false, invalidReason: "unexpected_verify_error" });
    } finally {
      proxy.setMode("pass");
    }
  });

  it("/ready names the node while it is cut, and recovers", async () => {
    proxy.setMode("refuse");
    try {
      const res = await fetch(`${api.url}/ready`);
      const body = await res.json();
      expect(res.status).toBe(503);
      expect(body.failing).toContain("rpc base-sepolia");
    } finally {
      proxy.setMode("pass");
    }
    // The report is remade at most every 15 s (READINESS_CACHE_MS), however often /ready is asked.
    await waitFor(async () => (await fetch(`${api.url}/ready`)).status === 200, "/ready to answer 200 again", 20_000, 500);
  });

  it("settle while the node refuses connections fails without broadcasting; the same payment settles once it is back", async () => {
    const from = (await chain.blockNumber()) + 1n;
    const sent = await chain.txCount(SIGNER);
    const p = await evmPaymentBody(pw.chain, 2_000n);
    proxy.setMode("refuse");
    let down;
    try {
      down = await post("/settle", p.body);
    } finally {
      proxy.setMode("pass");
    }
    expect(down.status).toBe(200);
    expect(down.body).toMatchObject({ success: false, transaction: "" });
    expect(await chain.txCount(SIGNER)).toBe(sent);
    const back = await post("/settle", p.body);
    expect(back.body).toMatchObject({ success: true });
    expect((await chain.authorizationsUsed(from)).get(p.nonce.toLowerCase())).toBe(1);
    expect(await chain.txCount(SIGNER)).toBe(sent + 1);
  });

  it("the node cut right after the broadcast: settle answers settlement_pending with the hash, and reconciles to one success when the node is back", async () => {
    const from = (await chain.blockNumber()) + 1n;
    const sent = await chain.txCount(SIGNER);
    const p = await evmPaymentBody(pw.chain, 3_000n);
    proxy.switchAfter(["eth_sendRawTransaction"], "refuse");
    let pending;
    try {
      pending = await post("/settle", p.body);
      expect(pending.status).toBe(200);
      expect(pending.body).toMatchObject({ success: false, errorReason: "settlement_pending" });
      expect(pending.body.transaction).toMatch(/^0x[0-9a-f]{64}$/);
      // Still cut: a retry cannot learn more, and must not send anything new.
      const again = await post("/settle", p.body);
      expect(again.body).toMatchObject({ success: false, transaction: pending.body.transaction });
    } finally {
      proxy.setMode("pass");
    }
    const reconciled = await post("/settle", p.body);
    expect(reconciled.body).toMatchObject({ success: true, transaction: pending.body.transaction });
    expect((await post("/settle", p.body)).body).toMatchObject({ success: false, errorReason: "duplicate_settlement" });
    expect((await chain.authorizationsUsed(from)).get(p.nonce.toLowerCase())).toBe(1);
    expect(await chain.txCount(SIGNER)).toBe(sent + 1);
  });

  // BUG (packages/evm/src/receipt.ts `waitForReceipt`, with the transport above): one receipt poll
  // against a silent node blocks about 41 s, far past SETTLE_RECEIPT_TIMEOUT_MS; a retry of the same
  // payment while the node stays silent took 126 s, past the official clients' 90 s.
  it("the node silent right after the broadcast: settle answers settlement_pending within the receipt bound", async () => {
    const p = await evmPaymentBody(pw.chain, 4_000n);
    proxy.switchAfter(["eth_sendRawTransaction"], "hang");
    try {
      const a = await post("/settle", p.body);
      expect(a.body).toMatchObject({ success: false, errorReason: "settlement_pending" });
    } finally {
      proxy.setMode("pass");
    }
  });
});
