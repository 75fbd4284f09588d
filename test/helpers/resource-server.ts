/**
 * A resource server as third parties build one: an express app behind the official `@x402/express`
 * payment middleware, charging through our facilitator, on a free port.
 */
import express, { type Express } from "express";
import type { RoutesConfig } from "@x402/core/server";
import { paymentMiddleware, type x402ResourceServer } from "@x402/express";
import type { EvmWorldNetwork } from "@facilitator/devnet";
import { listen, type Listening } from "@facilitator/server/testing";

/** `routes` charged through `resourceServer`; `serve` adds what each route answers once paid. */
export function startPaidServer(routes: RoutesConfig, resourceServer: x402ResourceServer, serve: (app: Express) => void): Promise<Listening> {
  const app = express();
  app.use(paymentMiddleware(routes, resourceServer));
  serve(app);
  return listen(app);
}

/** A route's `accepts`: `amount` base units of the network's token, to its payTo, with the token's EIP-712 domain. */
export function evmAccepts(n: EvmWorldNetwork, amount: string) {
  return {
    scheme: "exact",
    network: n.caip2 as `${string}:${string}`,
    payTo: n.payTo,
    price: { amount, asset: n.asset.address, extra: { name: n.asset.name, version: n.asset.version } },
    maxTimeoutSeconds: 60,
  };
}
