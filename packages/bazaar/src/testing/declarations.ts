/**
 * Payment payloads carrying bazaar declarations as the official 2.27 packages build them
 * (`declareDiscoveryExtension`, then the server extension's enrichment for a request), for tests.
 */
import { bazaarResourceServerExtension, declareDiscoveryExtension } from "@x402/extensions/bazaar";

export const PAY_TO = "0x1111111111111111111111111111111111111111";
export const PAYER = "0x2222222222222222222222222222222222222222";

type Declared = Parameters<typeof declareDiscoveryExtension>[0];

/** The bazaar extension a resource server sends for `method routePattern`, served at `path`. */
export function officialExtension(config: Declared, method: string, routePattern: string, path: string): Record<string, unknown> {
  const declared = declareDiscoveryExtension(config).bazaar;
  const context = { method, routePattern, adapter: { getPath: () => path } };
  return bazaarResourceServerExtension.enrichDeclaration!(declared, context) as Record<string, unknown>;
}

export const weatherExtension = (path = "/weather/paris") =>
  officialExtension(
    { input: { units: "metric" }, inputSchema: { properties: { units: { type: "string" } } }, output: { example: { temperature: 21 } } },
    "GET",
    "/weather/:city",
    path,
  );

/** A v2 payment payload for `url` declaring `extension`, paid in `exact` on base-sepolia to PAY_TO. */
export function declaringPayload(extension: unknown, resource: Record<string, unknown> = {}, accepted: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    x402Version: 2,
    resource: { url: "https://api.example.com/weather/paris", description: "Weather by city", mimeType: "application/json", ...resource },
    accepted: {
      scheme: "exact",
      network: "eip155:84532",
      amount: "1000",
      asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
      payTo: PAY_TO,
      maxTimeoutSeconds: 60,
      extra: { name: "USDC", version: "2" },
      ...accepted,
    },
    payload: {},
    extensions: { bazaar: extension },
  };
}
