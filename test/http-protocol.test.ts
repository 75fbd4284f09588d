/** The HTTP contract resource servers rely on: status codes, reason strings, limits, and nothing sent on rejection. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFacilitatorOnWorld, type FacilitatorFixture } from "./helpers/facilitator.ts";
import { chainView } from "./helpers/chain.ts";
import { evmPaymentBody } from "./helpers/payments.ts";

let fx: FacilitatorFixture;
beforeAll(async () => {
  fx = await startFacilitatorOnWorld({ networks: ["base-sepolia"] });
});
afterAll(async () => {
  await fx?.stop();
});

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${fx.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });

/** A payment of 1000 signed by the payer; `amount` asks for another amount in the requirements. */
async function v2Body(overrides: { amount?: string } = {}) {
  return (await evmPaymentBody(fx.world.networks["base-sepolia"]!, 1000n, overrides)).body;
}

describe("GET endpoints", () => {
  it("/supported lists v1 and v2 kinds with the token domain, and the signers", async () => {
    const body = await (await fetch(`${fx.url}/supported`)).json();
    expect(body.kinds).toEqual(
      expect.arrayContaining([
        { x402Version: 1, scheme: "exact", network: "base-sepolia", extra: { name: "USDC", version: "2" } },
        { x402Version: 2, scheme: "exact", network: "eip155:84532", extra: { name: "USDC", version: "2" } },
      ]),
    );
    expect(body.signers["eip155:*"]).toContain(fx.world.networks["base-sepolia"]!.facilitatorAddress);
    expect(body.extensions).toEqual(expect.arrayContaining(["eip2612GasSponsoring"]));
  });

  it.each(["/verify", "/settle"])("GET %s describes the endpoint", async (path) => {
    const res = await fetch(`${fx.url}${path}`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ endpoint: path, method: "POST" });
  });

  it("/health answers", async () => {
    expect(await (await fetch(`${fx.url}/health`)).json()).toEqual({ status: "ok" });
  });
});

describe("rejections: the right status and reason, and no transaction", () => {
  const signer = () => fx.world.networks["base-sepolia"]!.facilitatorAddress;

  it.each([
    ["malformed JSON", async () => "{not json", 400, "invalid_payload"],
    ["a JSON array", async () => [1, 2], 400, "invalid_payload"],
    ["an unknown x402 version", async () => ({ ...(await v2Body()), x402Version: 7 }), 400, "invalid_x402_version"],
    ["v1 fields in a v2 body", async () => {
      const b = await v2Body();
      (b.paymentRequirements as Record<string, unknown>).maxAmountRequired = "1000";
      return b;
    }, 400, "invalid_payload"],
    ["an unknown network", async () => {
      const b = await v2Body();
      b.paymentRequirements.network = "eip155:999999";
      b.paymentPayload.accepted.network = "eip155:999999";
      return b;
    }, 200, "invalid_network"],
    ["a network this facilitator does not serve", async () => {
      const b = await v2Body();
      b.paymentRequirements.network = "eip155:8453";
      b.paymentPayload.accepted.network = "eip155:8453";
      return b;
    }, 200, "invalid_network"],
    ["an unsupported scheme", async () => {
      const b = await v2Body();
      b.paymentRequirements.scheme = "batch-settlement";
      b.paymentPayload.accepted.scheme = "batch-settlement";
      return b;
    }, 200, "unsupported_scheme"],
    ["accepted that differs from the requirements", async () => {
      const b = await v2Body();
      b.paymentPayload.accepted.amount = "1";
      return b;
    }, 200, "invalid_payment_requirements"],
    ["an amount above the signed value", async () => v2Body({ amount: "1001" }), 200, "invalid_exact_evm_payload_authorization_value_mismatch"],
  ])("%s", async (_name, makeBody, status, reason) => {
    const sent = await chainView(fx.world.networks["base-sepolia"]!).txCount(signer());
    const body = await makeBody();
    for (const path of ["/verify", "/settle"]) {
      const res = await post(path, body);
      expect(res.status, path).toBe(status);
      const answer = await res.json();
      if (path === "/verify") expect(answer).toMatchObject({ isValid: false, invalidReason: reason });
      else expect(answer).toMatchObject({ success: false, errorReason: reason, transaction: "" });
      expect(typeof (answer.invalidMessage ?? answer.errorMessage)).toBe("string");
    }
    expect(await chainView(fx.world.networks["base-sepolia"]!).txCount(signer())).toBe(sent);
  });

  it("an oversized body gets 413 with a reason and is not parsed", async () => {
    const res = await post("/settle", JSON.stringify({ pad: "x".repeat(200_000) }));
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ success: false, errorReason: "payload_too_large" });
  });

  it("a v1 caller gets the v1 spelling of a value mismatch", async () => {
    const b = await v2Body({ amount: "1001" });
    const n = fx.world.networks["base-sepolia"]!;
    const req = { scheme: "exact", network: "base-sepolia", maxAmountRequired: "1001", asset: n.asset.address, payTo: n.payTo, resource: "r", description: "", mimeType: "", maxTimeoutSeconds: 60, extra: b.paymentRequirements.extra };
    const res = await post("/verify", { x402Version: 1, paymentPayload: { x402Version: 1, scheme: "exact", network: "base-sepolia", payload: b.paymentPayload.payload }, paymentRequirements: req });
    expect(await res.json()).toMatchObject({ isValid: false, invalidReason: "invalid_exact_evm_payload_authorization_value" });
  });
});
