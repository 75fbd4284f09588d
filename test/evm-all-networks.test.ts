/**
 * Every EVM network in one facilitator process: base-sepolia and og-evm (EIP-3009) and megaeth
 * (ERC-2612 permit), served by one exact-EVM mechanism with a signer pool and nonce manager per chain
 * and one settlement ledger. One `@x402/express` resource server charges on all three; one
 * `@x402/fetch` client pays them all (official ExactEvmScheme, our permit scheme for MegaETH).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getAddress, type Hash } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { x402Client } from "@x402/core/client";
import { HTTPFacilitatorClient } from "@x402/core/server";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { ExactEvmScheme } from "@x402/evm/exact/server";
import { x402ResourceServer } from "@x402/express";
import { decodePaymentResponseHeader, wrapFetchWithPayment } from "@x402/fetch";
import { PermitExactServerScheme, registerPermitScheme } from "@facilitator/evm";
import type { Listening } from "@facilitator/server/testing";
import { startFacilitatorOnWorld, type FacilitatorFixture } from "./helpers/facilitator.ts";
import { chainView } from "./helpers/chain.ts";
import { evmAccepts, startPaidServer } from "./helpers/resource-server.ts";

const NETWORKS = ["base-sepolia", "megaeth", "og-evm"] as const;
/** Two routes per network, so each chain settles more than one payment at once. */
const PRICES = { "base-sepolia": ["1100", "1200"], megaeth: ["2100000000000000000", "2200000000000000000"], "og-evm": ["3100", "3200"] } as const;

let fx: FacilitatorFixture;
let server: Listening;
let base: string;

beforeAll(async () => {
  fx = await startFacilitatorOnWorld({ networks: [...NETWORKS] });
  const resourceServer = new x402ResourceServer(new HTTPFacilitatorClient({ url: fx.url }))
    .register("eip155:84532", new ExactEvmScheme())
    .register("eip155:10740", new ExactEvmScheme())
    .register("eip155:4326", new PermitExactServerScheme());
  const routes = Object.fromEntries(
    NETWORKS.flatMap((name) => {
      const n = fx.world.networks[name]!;
      return PRICES[name].map((amount, i) => [`GET /${name}/${i}`, { accepts: evmAccepts(n, amount), description: `${name} report ${i}` }]);
    }),
  );
  server = await startPaidServer(
    routes,
    resourceServer,
    (app) => app.get("/:network/:i", (req, res) => void res.json({ network: req.params.network, report: Number(req.params.i) })),
  );
  base = server.url;
});

afterAll(async () => {
  await server?.close();
  await fx?.stop();
});

describe("one facilitator for base-sepolia, megaeth and og-evm", () => {
  it("/supported lists each network with its transfer method's extra, and the EVM signers", async () => {
    const body = await (await fetch(`${fx.url}/supported`)).json();
    const v2 = (network: string) => body.kinds.find((k: { x402Version: number; network: string }) => k.x402Version === 2 && k.network === network);
    expect(v2("eip155:84532")).toMatchObject({ scheme: "exact", extra: { name: "USDC", version: "2" } });
    expect(v2("eip155:10740")).toMatchObject({ scheme: "exact", extra: { name: "OUSDC", version: "2" } });
    expect(v2("eip155:4326")).toMatchObject({
      scheme: "exact",
      extra: { name: "MegaUSD", version: "1", assetTransferMethod: "erc2612-permit", spender: fx.world.networks.megaeth!.facilitatorAddress },
    });
    const signers = fx.world.facilitatorKeys.map((k) => privateKeyToAccount(k).address);
    expect([...body.signers["eip155:*"]].sort()).toEqual([...signers].sort());
  });

  it("pays two routes on each of the three chains at once through one client; each chain's funds move", async () => {
    const payer = privateKeyToAccount(fx.world.networks["base-sepolia"]!.payer.privateKey);
    const client = new x402Client();
    registerExactEvmScheme(client, { signer: payer });
    registerPermitScheme(client, { signer: payer, rpcUrl: fx.world.networks.megaeth!.rpcUrl });
    client.setSpendControls(false); // local tokens are not the default assets the client knows
    const pay = wrapFetchWithPayment(fetch, client);

    const before = Object.fromEntries(
      await Promise.all(NETWORKS.map(async (name) => [name, await chainView(fx.world.networks[name]!).balanceOf(fx.world.networks[name]!.payTo)] as const)),
    );
    // The two MegaETH payments sign permits for the same owner: a permit nonce serves one payment at a
    // time, so those two go one after the other; everything else runs concurrently.
    const payRoute = async (name: (typeof NETWORKS)[number], i: number) => {
      const res = await pay(`${base}/${name}/${i}`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ network: name, report: i });
      return { name, settlement: decodePaymentResponseHeader(res.headers.get("payment-response")!) };
    };
    const results = (
      await Promise.all([
        payRoute("base-sepolia", 0), payRoute("base-sepolia", 1), payRoute("og-evm", 0), payRoute("og-evm", 1),
        payRoute("megaeth", 0).then(async (first) => [first, await payRoute("megaeth", 1)]),
      ])
    ).flat();

    for (const { name, settlement } of results) {
      const n = fx.world.networks[name]!;
      expect(settlement).toMatchObject({ success: true, network: n.caip2, payer: payer.address });
      const receipt = await chainView(n).client.getTransactionReceipt({ hash: settlement.transaction as Hash });
      expect(receipt.status).toBe("success");
      expect(fx.world.facilitatorKeys.map((k) => privateKeyToAccount(k).address)).toContain(getAddress(receipt.from));
    }
    for (const name of NETWORKS) {
      const n = fx.world.networks[name]!;
      const chain = chainView(n);
      const paid = PRICES[name].reduce((sum, a) => sum + BigInt(a), 0n);
      expect(await chain.balanceOf(n.payTo)).toBe(before[name]! + paid);
      expect(await chain.ethBalance(payer.address)).toBe(0n);
    }
  });
});
