/**
 * The official x402 packages as third parties: v1 (`x402@1.2.0`) and v2 (`@x402/*` 2.27) clients and
 * resource servers pay through our facilitator on local chains with the real chain ids.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { privateKeyToAccount } from "viem/accounts";
import { createPaymentHeader } from "x402/client";
import { createSigner } from "x402/types";
import { useFacilitator } from "x402/verify";
import { x402Client } from "@x402/core/client";
import { HTTPFacilitatorClient } from "@x402/core/server";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { ExactEvmScheme } from "@x402/evm/exact/server";
import { x402ResourceServer } from "@x402/express";
import { decodePaymentResponseHeader, wrapFetchWithPayment } from "@x402/fetch";
import { startFacilitatorOnWorld, type FacilitatorFixture } from "./helpers/facilitator.ts";
import type { Listening } from "@facilitator/server/testing";
import { chainView } from "./helpers/chain.ts";
import { evmAccepts, startPaidServer } from "./helpers/resource-server.ts";

let fx: FacilitatorFixture;

beforeAll(async () => {
  fx = await startFacilitatorOnWorld({ networks: ["base-sepolia", "og-evm"] });
});
afterAll(async () => {
  await fx?.stop();
});

describe("x402@1.2.0 (protocol v1) through useFacilitator", () => {
  it("verifies and settles a base-sepolia payment; funds move on chain", async () => {
    const n = fx.world.networks["base-sepolia"]!;
    const chain = chainView(n);
    const requirements = {
      scheme: "exact" as const,
      network: "base-sepolia" as const,
      maxAmountRequired: "2500",
      resource: "http://127.0.0.1/weather",
      description: "weather",
      mimeType: "application/json",
      payTo: n.payTo,
      maxTimeoutSeconds: 60,
      asset: n.asset.address,
      extra: { name: n.asset.name, version: n.asset.version },
    };
    const signer = await createSigner("base-sepolia", n.payer.privateKey);
    const header = await createPaymentHeader(signer as never, 1, requirements);
    const payment = JSON.parse(Buffer.from(header, "base64").toString());
    const facilitator = useFacilitator({ url: fx.url as `${string}://${string}` });

    const before = await chain.balanceOf(n.payTo);
    const verified = await facilitator.verify(payment, requirements);
    expect(verified).toMatchObject({ isValid: true, payer: n.payer.address });

    const settled = await facilitator.settle(payment, requirements);
    expect(settled).toMatchObject({ success: true, network: "base-sepolia", payer: n.payer.address });
    expect(settled.transaction).toMatch(/^0x[0-9a-f]{64}$/);
    expect(await chain.balanceOf(n.payTo)).toBe(before + 2500n);
    const receipt = await chain.client.getTransactionReceipt({ hash: settled.transaction as `0x${string}` });
    expect(receipt.status).toBe("success");

    // The same payment again: no second success, no second transaction.
    const again = await facilitator.settle(payment, requirements);
    expect(again).toMatchObject({ success: false, errorReason: "duplicate_settlement" });
    expect(await chain.balanceOf(n.payTo)).toBe(before + 2500n);
  });
});

describe("@x402/express resource server with an @x402/fetch client (protocol v2)", () => {
  const servers: Listening[] = [];
  afterAll(async () => {
    for (const s of servers) await s.close();
  });

  async function paidServer(networkName: "base-sepolia" | "og-evm", amount: string): Promise<string> {
    const n = fx.world.networks[networkName]!;
    const resourceServer = new x402ResourceServer(new HTTPFacilitatorClient({ url: fx.url })).register(
      n.caip2 as `${string}:${string}`,
      new ExactEvmScheme(),
    );
    const server = await startPaidServer(
      { "GET /report": { accepts: evmAccepts(n, amount), description: "a paid report" } },
      resourceServer,
      (app) => app.get("/report", (_req, res) => void res.json({ report: "paid content" })),
    );
    servers.push(server);
    return server.url;
  }

  function payingFetch(networkName: "base-sepolia" | "og-evm") {
    const n = fx.world.networks[networkName]!;
    const client = new x402Client();
    registerExactEvmScheme(client, { signer: privateKeyToAccount(n.payer.privateKey) });
    client.setSpendControls(false); // our local tokens are not the default assets the client knows
    return wrapFetchWithPayment(fetch, client);
  }

  it.each(["base-sepolia", "og-evm"] as const)("on %s: 402, pay, 200 with PAYMENT-RESPONSE, balances moved", async (networkName) => {
    const n = fx.world.networks[networkName]!;
    const chain = chainView(n);
    const base = await paidServer(networkName, "1234");

    const unpaid = await fetch(`${base}/report`);
    expect(unpaid.status).toBe(402);
    expect(unpaid.headers.get("payment-required")).toBeTruthy();

    const payerBefore = await chain.balanceOf(n.payer.address);
    const payToBefore = await chain.balanceOf(n.payTo);
    const res = await payingFetch(networkName)(`${base}/report`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ report: "paid content" });
    const settlement = decodePaymentResponseHeader(res.headers.get("payment-response")!);
    expect(settlement).toMatchObject({ success: true, network: n.caip2, payer: n.payer.address });
    expect(await chain.balanceOf(n.payer.address)).toBe(payerBefore - 1234n);
    expect(await chain.balanceOf(n.payTo)).toBe(payToBefore + 1234n);
    expect(await chain.ethBalance(n.payer.address)).toBe(0n); // the payer never needed gas money
  });
});
