/** The payer's side of an EIP-3009 payment, for tests, benchmarks and demos. */
import type { Eip3009Payload } from "@facilitator/core";
import { toHex, type Address, type Hex, type LocalAccount } from "viem";
import { eip3009TypedData, type TokenDomain } from "./eip3009.ts";

export interface Eip3009PaymentInput {
  domain: TokenDomain;
  to: Address;
  value: bigint;
  /** Default: 10 minutes ago. */
  validAfter?: bigint;
  /** Default: 10 minutes from now. */
  validBefore?: bigint;
  /** Default: 32 random bytes. */
  nonce?: Hex;
  /** Who signs; defaults to `account`. For an ERC-1271 wallet, `from` is the wallet and the owner signs. */
  from?: Address;
}

/** Signs `TransferWithAuthorization` and returns the x402 `exact` EVM payload. */
export async function signEip3009Payload(account: LocalAccount, input: Eip3009PaymentInput): Promise<Eip3009Payload> {
  const now = BigInt(Math.floor(Date.now() / 1000));
  const authorization = {
    from: input.from ?? account.address,
    to: input.to,
    value: input.value,
    validAfter: input.validAfter ?? now - 600n,
    validBefore: input.validBefore ?? now + 600n,
    nonce: input.nonce ?? toHex(crypto.getRandomValues(new Uint8Array(32))),
  };
  const signature = await account.signTypedData(eip3009TypedData(input.domain, authorization));
  return {
    signature,
    authorization: {
      from: authorization.from,
      to: authorization.to,
      value: authorization.value.toString(),
      validAfter: authorization.validAfter.toString(),
      validBefore: authorization.validBefore.toString(),
      nonce: authorization.nonce,
    },
  };
}
