import { describe, expect, it } from "vitest";
import { bindingOf, checkBinding } from "./binding.ts";
import { NetworkRegistry } from "./networks.ts";
import { Reason } from "./reasons.ts";
import type { PaymentRequest } from "./request.ts";

const registry = new NetworkRegistry();
const base = registry.get("base-sepolia");
const solana = registry.get("solana-devnet");
const payTo = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";

const request = (over: Partial<PaymentRequest["requirements"]> = {}, network = base, scheme = "exact"): PaymentRequest => ({
  x402Version: 2,
  scheme,
  network,
  networkId: network.caip2,
  requirements: { scheme, amount: 1000n, asset: network.asset.address, payTo, maxTimeoutSeconds: 60, extra: {}, ...over },
  payload: {},
});

describe("a payment is bound to its first request", () => {
  const entry = { binding: bindingOf(request()) };

  it.each([
    ["the same request", request(), undefined],
    ["the same payee in another case (EVM addresses are caseless)", request({ payTo: payTo.toLowerCase() }), undefined],
    ["another payee", request({ payTo: "0x000000000000000000000000000000000000dEaD" }), "payTo"],
    ["another amount", request({ amount: 999n }), "amount"],
    ["another asset", request({ asset: "0x1111111111111111111111111111111111111111" }), "asset"],
    ["another network", request({}, registry.get("base")), "network"],
    ["another scheme", request({}, base, "upto"), "scheme"],
  ] as const)("%s", (_name, asked, field) => {
    const refusal = checkBinding(entry, asked);
    if (!field) return expect(refusal).toBeUndefined();
    expect(refusal?.reason).toBe(Reason.paymentRequestMismatch);
    expect(refusal?.message).toContain(field);
  });

  it("keeps Solana addresses as they are (base58 is case-sensitive)", () => {
    const owner = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM";
    const bound = { binding: bindingOf(request({ payTo: owner }, solana)) };
    expect(checkBinding(bound, request({ payTo: owner }, solana))).toBeUndefined();
    expect(checkBinding(bound, request({ payTo: owner.toLowerCase() }, solana))?.reason).toBe(Reason.paymentRequestMismatch);
  });

  it("binds a payment to the API key that first asked for it, when keys are in use", () => {
    const byA = { binding: bindingOf({ ...request(), caller: "key-a" }) };
    expect(checkBinding(byA, { ...request(), caller: "key-a" })).toBeUndefined();
    expect(checkBinding(byA, { ...request(), caller: "key-b" })?.reason).toBe(Reason.paymentRequestMismatch);
    expect(checkBinding(byA, request())?.reason).toBe(Reason.paymentRequestMismatch);
    const anonymous = { binding: bindingOf(request()) };
    expect(checkBinding(anonymous, { ...request(), caller: "key-b" })).toBeUndefined(); // bound before keys were required
  });

  it("lets entries written before bindings existed through", () => {
    expect(checkBinding({}, request({ payTo: "0x000000000000000000000000000000000000dEaD" }))).toBeUndefined();
  });
});
