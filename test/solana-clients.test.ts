/**
 * The official x402 clients pay on a real Solana runtime (litesvm behind our JSON-RPC front), and
 * the mechanism verifies and settles what they produce, as the server will: parse with core, then
 * verify, then settle. The payer holds no SOL; the facilitator pays the fee.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKeyPairSignerFromBytes, getBase58Encoder } from "@solana/kit";
import { createPaymentHeader } from "x402/client";
import { createSigner } from "x402/types";
import { x402Client } from "@x402/core/client";
import { ExactSvmScheme } from "@x402/svm/exact/client";
import { toSettleResponse, toVerifyResponse } from "@facilitator/core";
import {
  DEVNET_CAIP2,
  requirementsV1,
  requirementsV2,
  solBalance,
  startSolanaFixture,
  toRequest,
  tokenBalance,
  type SolanaFixture,
} from "./helpers/solana.ts";

let fx: SolanaFixture;

beforeAll(async () => {
  fx = await startSolanaFixture({ feePayerCount: 2 });
});
afterAll(async () => {
  await fx?.stop();
});

describe("x402@1.2.0 Solana client", () => {
  it("pays; verify and settle move the tokens, and the facilitator pays the fee", async () => {
    const requirements = requirementsV1(fx, 25_000n);
    const signer = await createSigner("solana-devnet", fx.world.payer.secretKey);
    // x402's types pin another @solana/kit major; the signer is structurally what createPaymentHeader takes.
    const header = await createPaymentHeader(signer as never, 1, requirements as never, { svmConfig: { rpcUrl: fx.rpc.rpcUrl } });
    const paymentPayload = JSON.parse(Buffer.from(header, "base64").toString("utf8"));
    const request = toRequest(fx, { x402Version: 1, paymentPayload, paymentRequirements: requirements });

    const payerBefore = await tokenBalance(fx, fx.world.payerTokenAccount);
    const payeeBefore = await tokenBalance(fx, fx.world.payToTokenAccount);
    const feePayerBefore = await solBalance(fx, fx.world.feePayers[0].address);

    const verified = await fx.mechanism.verify(request);
    expect(toVerifyResponse(verified, 1)).toEqual({ isValid: true, payer: fx.world.payer.address });

    const settled = await fx.mechanism.settle(request);
    const response = toSettleResponse(settled, 1, request.networkId);
    expect(response).toMatchObject({ success: true, payer: fx.world.payer.address, network: "solana-devnet", amount: "25000" });
    // The answer names the transaction that landed.
    expect(fx.rpc.chain.status(response.transaction)?.err).toBeNull();

    expect(await tokenBalance(fx, fx.world.payerTokenAccount)).toBe(payerBefore - 25_000n);
    expect(await tokenBalance(fx, fx.world.payToTokenAccount)).toBe(payeeBefore + 25_000n);
    expect(await solBalance(fx, fx.world.payer.address)).toBe(0n);
    expect(await solBalance(fx, fx.world.feePayers[0].address)).toBeLessThan(feePayerBefore);

    // The same payment again is a duplicate, and nothing more moves.
    const again = await fx.mechanism.settle(request);
    expect(again).toMatchObject({ success: false, reason: "duplicate_settlement", transaction: response.transaction });
    expect(await tokenBalance(fx, fx.world.payToTokenAccount)).toBe(payeeBefore + 25_000n);
    expect(await fx.mechanism.verify(request)).toMatchObject({ isValid: false, reason: "duplicate_settlement" });
  });

  it("pays on the v1 network name `solana` (mainnet's entry, configured to the local node)", async () => {
    const requirements = requirementsV1(fx, 15_000n, {}, "solana");
    const signer = await createSigner("solana", fx.world.payer.secretKey);
    const header = await createPaymentHeader(signer as never, 1, requirements as never, { svmConfig: { rpcUrl: fx.rpc.rpcUrl } });
    const paymentPayload = JSON.parse(Buffer.from(header, "base64").toString("utf8"));
    const request = toRequest(fx, { x402Version: 1, paymentPayload, paymentRequirements: requirements });
    expect(request.network.caip2).toBe("solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp");
    const payeeBefore = await tokenBalance(fx, fx.world.payToTokenAccount);

    const settled = await fx.mechanism.settle(request);
    expect(toSettleResponse(settled, 1, request.networkId)).toMatchObject({ success: true, network: "solana", amount: "15000" });
    expect(await tokenBalance(fx, fx.world.payToTokenAccount)).toBe(payeeBefore + 15_000n);
  });
});

describe("@x402/svm 2.27 client", () => {
  it("pays with the second fee payer it was offered; verify and settle move the tokens", async () => {
    const feePayer = fx.world.feePayers[1].address;
    const requirements = requirementsV2(fx, 40_000n, { feePayer });
    const signer = await createKeyPairSignerFromBytes(getBase58Encoder().encode(fx.world.payer.secretKey));
    // Our local mint is not one of the client's default assets: spend controls would refuse it.
    const client = new x402Client().register("solana:*", new ExactSvmScheme(signer, { rpcUrl: fx.rpc.rpcUrl })).setSpendControls(false);
    const paymentPayload = await client.createPaymentPayload({
      x402Version: 2,
      resource: { url: "http://127.0.0.1/paid", description: "a paid resource", mimeType: "application/json" },
      accepts: [requirements],
    });
    const request = toRequest(fx, { x402Version: 2, paymentPayload, paymentRequirements: requirements });
    const payeeBefore = await tokenBalance(fx, fx.world.payToTokenAccount);
    const secondBefore = await solBalance(fx, feePayer);
    const firstBefore = await solBalance(fx, fx.world.feePayers[0].address);

    expect(await fx.mechanism.verify(request)).toEqual({ isValid: true, payer: fx.world.payer.address });
    const settled = await fx.mechanism.settle(request);
    expect(toSettleResponse(settled, 2, request.networkId)).toMatchObject({ success: true, network: DEVNET_CAIP2, amount: "40000" });

    expect(await tokenBalance(fx, fx.world.payToTokenAccount)).toBe(payeeBefore + 40_000n);
    // The fee payer the transaction names paid; the other did not.
    expect(await solBalance(fx, feePayer)).toBeLessThan(secondBefore);
    expect(await solBalance(fx, fx.world.feePayers[0].address)).toBe(firstBefore);
    expect(await solBalance(fx, fx.world.payer.address)).toBe(0n);
  });

  it("advertises a fee payer per network and lists every fee payer as a signer", () => {
    const advertised = fx.mechanism.supportedExtra(fx.network) as { feePayer: string };
    expect(fx.world.feePayers.map((f) => f.address)).toContain(advertised.feePayer);
    expect(fx.mechanism.signers().sort()).toEqual(fx.world.feePayers.map((f) => f.address).sort());
  });
});
