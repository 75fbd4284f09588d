import { describe, expect, it } from "vitest";
import { NetworkRegistry } from "./networks.ts";
import { parsePaymentBody } from "./request.ts";
import { Reason } from "./reasons.ts";

const registry = new NetworkRegistry();
const asset = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
const payTo = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";
const evmPayload = { signature: "0x00", authorization: {} };

const v1Requirements = {
  scheme: "exact", network: "base-sepolia", maxAmountRequired: "1000", asset, payTo,
  resource: "https://api.example/r", description: "", mimeType: "application/json", maxTimeoutSeconds: 60,
  extra: { name: "USDC", version: "2" },
};
const v1Body = { x402Version: 1, paymentPayload: { x402Version: 1, scheme: "exact", network: "base-sepolia", payload: evmPayload }, paymentRequirements: v1Requirements };

const v2Requirements = { scheme: "exact", network: "eip155:84532", amount: "1000", asset, payTo, maxTimeoutSeconds: 60, extra: { name: "USDC", version: "2" } };
const v2Body = {
  x402Version: 2,
  paymentPayload: { x402Version: 2, resource: { url: "https://api.example/r" }, accepted: { ...v2Requirements }, payload: evmPayload },
  paymentRequirements: v2Requirements,
};

const patch = (body: any, f: (b: any) => void) => {
  const copy = structuredClone(body);
  f(copy);
  return copy;
};

describe("parsePaymentBody", () => {
  it("normalises v1 into the internal request", () => {
    const r = parsePaymentBody(v1Body, registry);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.request).toMatchObject({ x402Version: 1, scheme: "exact", networkId: "base-sepolia", resource: "https://api.example/r" });
    expect(r.request.network.chainId).toBe(84532);
    expect(r.request.requirements.amount).toBe(1000n);
  });

  it("normalises v2 into the same shape", () => {
    const r = parsePaymentBody(v2Body, registry);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.request).toMatchObject({ x402Version: 2, networkId: "eip155:84532", resource: "https://api.example/r" });
    expect(r.request.network.name).toBe("base-sepolia");
    expect(r.request.requirements.amount).toBe(1000n);
  });

  it("accepts either spelling of a network on both sides", () => {
    const mixed = patch(v2Body, (b) => (b.paymentRequirements.network = "base-sepolia"));
    const r = parsePaymentBody(mixed, registry);
    expect(r.ok).toBe(true);
  });

  it.each([
    ["a non-object body", "hello", 400, Reason.invalidPayload],
    ["an unknown version", patch(v1Body, (b) => { b.x402Version = 3; b.paymentPayload.x402Version = 3; }), 400, Reason.invalidVersion],
    ["versions that disagree", patch(v1Body, (b) => (b.paymentPayload.x402Version = 2)), 400, Reason.invalidVersion],
    ["v1 fields in a v2 body", patch(v2Body, (b) => (b.paymentRequirements.maxAmountRequired = "1000")), 400, Reason.invalidPayload],
    ["a v2 body without amount", patch(v2Body, (b) => delete b.paymentRequirements.amount), 400, Reason.invalidPayload],
    ["a non-integer amount", patch(v1Body, (b) => (b.paymentRequirements.maxAmountRequired = "1.5")), 400, Reason.invalidPayload],
    ["a missing payload", patch(v1Body, (b) => delete b.paymentPayload.payload), 400, Reason.invalidPayload],
    ["an unknown network", patch(v1Body, (b) => { b.paymentRequirements.network = "dogechain"; b.paymentPayload.network = "dogechain"; }), 200, Reason.invalidNetwork],
    ["v1 payload and requirements on different networks", patch(v1Body, (b) => (b.paymentPayload.network = "base")), 200, Reason.invalidNetwork],
    ["v1 payload and requirements with different schemes", patch(v1Body, (b) => (b.paymentPayload.scheme = "upto")), 200, Reason.invalidScheme],
    ["accepted on another network", patch(v2Body, (b) => (b.paymentPayload.accepted.network = "eip155:8453")), 200, Reason.invalidNetwork],
    ["accepted with another amount", patch(v2Body, (b) => (b.paymentPayload.accepted.amount = "999")), 200, Reason.invalidRequirements],
    ["accepted with another payTo", patch(v2Body, (b) => (b.paymentPayload.accepted.payTo = asset)), 200, Reason.invalidRequirements],
    ["accepted with another asset", patch(v2Body, (b) => (b.paymentPayload.accepted.asset = payTo)), 200, Reason.invalidRequirements],
  ])("rejects %s", (_name, body, status, reason) => {
    const r = parsePaymentBody(body, registry);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.status).toBe(status);
    expect(r.reason).toBe(reason);
    expect(r.message.length).toBeGreaterThan(5);
  });

  it("compares EVM addresses without case", () => {
    const r = parsePaymentBody(patch(v2Body, (b) => (b.paymentPayload.accepted.payTo = payTo.toLowerCase())), registry);
    expect(r.ok).toBe(true);
  });

  it("compares Solana addresses with case", () => {
    const mint = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU";
    const req = { ...v2Requirements, network: "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1", asset: mint, payTo: "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin", extra: {} };
    const body = { x402Version: 2, paymentPayload: { x402Version: 2, accepted: { ...req, asset: mint.toLowerCase() }, payload: { transaction: "AA==" } }, paymentRequirements: req };
    const r = parsePaymentBody(body, registry);
    expect(r.ok).toBe(false);
  });
});
