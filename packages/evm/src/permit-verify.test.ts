import { beforeAll, describe, expect, it } from "vitest";
import { Reason, type PaymentRequest } from "@facilitator/core";
import { deployErc1271Wallet, devKey, DevRole } from "@facilitator/devnet";
import { privateKeyToAccount } from "viem/accounts";
import type { EvmExactMechanism } from "./mechanism.ts";
import { signEip3009Payload } from "./eip3009-client.ts";
import { signPermitPayload } from "./permit-client.ts";
import { permitLedgerKey } from "./permit.ts";
import {
  ACCEPTED_ASSET_WITHOUT_CODE,
  now,
  startChainWithMechanism,
  startPermitTestChain,
  stranger,
  unfunded,
  UNLISTED_ASSET,
  type PermitTestChain,
  type TempLedger,
} from "./testing/index.ts";

let chain: PermitTestChain;
let mechanism: EvmExactMechanism;
let store: TempLedger;

beforeAll(async () => {
  const fx = await startChainWithMechanism(startPermitTestChain);
  ({ chain, store, mechanism } = fx);
  return fx.stop;
});

/** The payer's nonce was used on chain by a permit for someone else; no allowance of ours is in place. */
async function nonceUsed(): Promise<PaymentRequest> {
  const nonce = await chain.nonces(chain.payer.address);
  const elsewhere = await chain.pay({ spender: stranger.address, nonce });
  await chain.client.waitForTransactionReceipt({ hash: await chain.permitElsewhere(elsewhere) });
  return chain.pay({ nonce });
}

const rejections: [string, () => Promise<PaymentRequest>, string][] = [
  ["a permit for a spender that is not our signer", () => chain.pay({ spender: stranger.address }), Reason.permitSpenderMismatch],
  ["a deadline in the past", () => chain.pay({ deadline: now() - 1n }), Reason.permitDeadline],
  ["a deadline within 6 s", () => chain.pay({ deadline: now() + 3n }), Reason.permitDeadline],
  ["a nonce already used", nonceUsed, Reason.permitNonce],
  ["a nonce ahead of the token's", async () => chain.pay({ nonce: (await chain.nonces(chain.payer.address)) + 1n }), Reason.permitNonce],
  ["a value lower than required", async () => chain.request((await chain.pay({ value: 999n })).payload, { amount: 1000n }), Reason.valueMismatch],
  ["a value higher than required", async () => chain.request((await chain.pay({ value: 1001n })).payload, { amount: 1000n }), Reason.valueMismatch],
  ["a signature by someone else", async () => {
    const forged = await signPermitPayload(stranger, {
      domain: chain.domain, spender: chain.facilitator, value: 1000n, nonce: await chain.nonces(chain.payer.address), deadline: now() + 600n, owner: chain.payer.address,
    });
    return chain.request(forged);
  }, Reason.signature],
  ["a permit signed for another domain name", () => chain.pay({ domain: { ...chain.domain, name: "USD Coin" } }), Reason.signature],
  ["a permit signed for another chain id", () => chain.pay({ domain: { ...chain.domain, chainId: 1 } }), Reason.signature],
  ["requirements naming another domain name", () => chain.pay({ requirements: { extra: { name: "USDm", version: "1" } } }), Reason.tokenNameMismatch],
  ["requirements naming another domain version", () => chain.pay({ requirements: { extra: { name: "MegaUSD", version: "2" } } }), Reason.tokenVersionMismatch],
  ["requirements asking for Permit2", () => chain.pay({ requirements: { extra: { name: "MegaUSD", version: "1", assetTransferMethod: "permit2" } } }), Reason.invalidRequirements],
  ["an EIP-3009 payload on a permit-only network", async () =>
    chain.request(await signEip3009Payload(chain.payer, { domain: chain.domain, to: chain.payTo, value: 1000n })), Reason.invalidPayload],
  ["insufficient balance", () => chain.pay({ account: unfunded }), Reason.insufficientFunds],
  ["a token without code", async () => {
    const asset = ACCEPTED_ASSET_WITHOUT_CODE;
    const payload = await signPermitPayload(chain.payer, {
      domain: { ...chain.domain, verifyingContract: asset }, spender: chain.facilitator, value: 1000n, nonce: 0n, deadline: now() + 600n,
    });
    return chain.request(payload, { asset });
  }, Reason.assetNotDeployed],
  ["a token the network does not accept", async () => {
    const payload = await signPermitPayload(chain.payer, {
      domain: { ...chain.domain, verifyingContract: UNLISTED_ASSET }, spender: chain.facilitator, value: 1000n, nonce: 0n, deadline: now() + 600n,
    });
    return chain.request(payload, { asset: UNLISTED_ASSET });
  }, Reason.assetNotAllowed],
  ["amount zero", async () => {
    const payload = await signPermitPayload(chain.payer, { domain: chain.domain, spender: chain.facilitator, value: 0n, nonce: 0n, deadline: now() + 600n });
    return chain.request(payload, { amount: 0n });
  }, Reason.amountNotPositive],
];

describe("ERC-2612 permit verify and settle: rejections", () => {
  it.each(rejections)("%s: verify and settle refuse with the reason, nothing is sent or recorded", async (_name, make, reason) => {
    const request = await make();
    const sentBefore = await chain.minedCount();
    const verified = await mechanism.verify(request);
    expect(verified).toMatchObject({ isValid: false, reason });
    expect((verified as { message: string }).message).toBeTruthy();
    const settled = await mechanism.settle(request);
    expect(settled).toMatchObject({ success: false, reason, transaction: "" });
    expect(await chain.minedCount()).toBe(sentBefore);
    expect(await chain.rpc("eth_getTransactionCount", [chain.facilitator, "pending"])).toBe(`0x${sentBefore.toString(16)}`);
    const p = request.payload as { permit?: { owner: string; nonce: string } };
    if (p.permit) {
      expect(await store.ledger.get(permitLedgerKey(4326, request.requirements.asset, p.permit.owner, BigInt(p.permit.nonce)))).toBeUndefined();
    }
  });

  it("routes a contract wallet's (non-ECDSA) permit to the token: this token's permit takes ECDSA only", async () => {
    const owner = privateKeyToAccount(devKey(7));
    const wallet = await deployErc1271Wallet({ rpcUrl: chain.anvil.rpcUrl, chainId: 4326, deployerKey: devKey(DevRole.deployer), owner: owner.address });
    await chain.mint(wallet, 5000n);
    const request = await chain.pay({ account: owner, owner: wallet, nonce: 0n });
    const verified = await mechanism.verify(request);
    // Not rejected by the ECDSA rule (the owner has code): the token's permit() decides, and refuses.
    expect(verified).toMatchObject({ isValid: false, reason: Reason.signature });
    expect((verified as { message: string }).message).toMatch(/permit refused the contract wallet/);
  });
});

describe("ERC-2612 permit verify", () => {
  it("accepts a valid permit and names the owner as payer, without sending anything", async () => {
    const sentBefore = await chain.minedCount();
    expect(await mechanism.verify(await chain.pay({ value: 1000n }))).toEqual({ isValid: true, payer: chain.payer.address });
    expect(await chain.minedCount()).toBe(sentBefore);
  });

  it("advertises the token domain, the transfer method and the spender in /supported extra", () => {
    expect(mechanism.supportedExtra(chain.network)).toEqual({
      name: "MegaUSD",
      version: "1",
      assetTransferMethod: "erc2612-permit",
      spender: chain.facilitator,
    });
  });
});
