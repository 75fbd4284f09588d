/**
 * Solana through our HTTP facilitator with the official v2 stack as third parties: an `@x402/express`
 * resource server (which takes the fee payer from our /supported) and an `@x402/fetch` client paying
 * with `@x402/svm`, against litesvm behind our JSON-RPC front.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKeyPairSignerFromBytes, createSolanaRpc, getBase58Encoder, type Address } from "@solana/kit";
import { x402Client } from "@x402/core/client";
import { HTTPFacilitatorClient } from "@x402/core/server";
import { x402ResourceServer } from "@x402/express";
import { decodePaymentResponseHeader, wrapFetchWithPayment } from "@x402/fetch";
import { ExactSvmScheme as SvmClientScheme } from "@x402/svm/exact/client";
import { ExactSvmScheme as SvmServerScheme } from "@x402/svm/exact/server";
import { setupSolanaWorld, startSolanaRpc, type SolanaRpc, type SolanaWorld } from "@facilitator/devnet";
import type { Listening } from "@facilitator/server/testing";
import { startFacilitatorOnSolana, type RunningFacilitator } from "./helpers/facilitator.ts";
import { startPaidServer } from "./helpers/resource-server.ts";
import { DEVNET_CAIP2 } from "./helpers/solana.ts";

let rpc: SolanaRpc;
let world: SolanaWorld;
let facilitator: RunningFacilitator;
let resource: Listening;
let resourceUrl: string;

beforeAll(async () => {
  rpc = await startSolanaRpc();
  world = await setupSolanaWorld(rpc, { decimals: 6 });
  facilitator = await startFacilitatorOnSolana({ rpc, world });
  const server = new x402ResourceServer(new HTTPFacilitatorClient({ url: facilitator.url })).register(DEVNET_CAIP2, new SvmServerScheme());
  resource = await startPaidServer(
    {
      "GET /inference": {
        accepts: { scheme: "exact", network: DEVNET_CAIP2, payTo: world.payTo, price: { amount: "25000", asset: world.mint }, maxTimeoutSeconds: 60 },
        description: "one inference",
      },
    },
    server,
    (app) => app.get("/inference", (_req, res) => void res.json({ completion: "paid answer" })),
  );
  resourceUrl = resource.url;
});

afterAll(async () => {
  await resource?.close();
  await facilitator?.stop();
  await rpc?.stop();
});

const tokenBalance = async (account: Address) =>
  BigInt((await createSolanaRpc(rpc.rpcUrl).getTokenAccountBalance(account).send()).value.amount);

describe("@x402/express + @x402/fetch on Solana", () => {
  it("/supported gives each Solana kind our fee payer", async () => {
    const supported = await (await fetch(`${facilitator.url}/supported`)).json();
    const devnetKinds = supported.kinds.filter((k: { network: string }) => k.network === DEVNET_CAIP2 || k.network === "solana-devnet");
    expect(devnetKinds).toHaveLength(2);
    for (const k of devnetKinds) expect(world.feePayers.map((f) => f.address)).toContain(k.extra.feePayer);
    expect(supported.signers["solana:*"]).toEqual(expect.arrayContaining(world.feePayers.map((f) => f.address)));
  });

  it("402, pay, 200 with PAYMENT-RESPONSE; tokens moved; the payer never held SOL", async () => {
    expect((await fetch(`${resourceUrl}/inference`)).status).toBe(402);
    const signer = await createKeyPairSignerFromBytes(getBase58Encoder().encode(world.payer.secretKey));
    const client = new x402Client().register("solana:*", new SvmClientScheme(signer, { rpcUrl: rpc.rpcUrl })).setSpendControls(false);
    const payeeBefore = await tokenBalance(world.payToTokenAccount);

    const res = await wrapFetchWithPayment(fetch, client)(`${resourceUrl}/inference`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ completion: "paid answer" });
    const settlement = decodePaymentResponseHeader(res.headers.get("payment-response")!);
    expect(settlement).toMatchObject({ success: true, network: DEVNET_CAIP2, payer: world.payer.address });
    expect(await tokenBalance(world.payToTokenAccount)).toBe(payeeBefore + 25_000n);
    const lamports = (await createSolanaRpc(rpc.rpcUrl).getBalance(world.payer.address).send()).value;
    expect(lamports).toBe(0n);
  });
});
