/** The payer's signature check (node:crypto, keys cached) decides as kit's WebCrypto verify does. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  generateKeyPairSigner,
  getAddressDecoder,
  getPublicKeyFromAddress,
  signBytes,
  verifySignature,
  type Address,
  type SignatureBytes,
} from "@solana/kit";
import { Reason } from "@facilitator/core";
import type { TransferDetails } from "./rules.ts";
import { checkPayerSignature } from "./signing.ts";
import type { PaymentTransaction } from "./transaction.ts";

const payer = await generateKeyPairSigner();
const other = await generateKeyPairSigner();
const message = new TextEncoder().encode("a v0 message: fee payer, payer, transfer");
const signedBy = async (key: CryptoKey, bytes: Uint8Array) => (await signBytes(key, bytes)) as SignatureBytes;
const payerSignature = await signedBy(payer.keyPair.privateKey, message);

/** Only what the check reads: the message and the signatures by signer. */
function tx(messageBytes: Uint8Array, signatures: Record<string, SignatureBytes | null>): PaymentTransaction {
  return { messageBytes, signatures } as unknown as PaymentTransaction;
}
const authority = (address: string) => ({ authority: address }) as TransferDetails;

/** kit's verdict, as checkPayerSignature reached it before: WebCrypto import, then verify. */
async function kitVerifies(address: string, signature: SignatureBytes, bytes: Uint8Array): Promise<boolean> {
  try {
    return await verifySignature(await getPublicKeyFromAddress(address as Address), signature, bytes);
  } catch {
    return false;
  }
}

// 32 bytes that are not the encoding of any ed25519 point (y = 2 has no x on the curve).
const notAPoint = getAddressDecoder().decode(Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? 2 : 0)));

const flipped = Uint8Array.from(message, (b, i) => (i === 3 ? b ^ 1 : b));
const otherSignature = await signedBy(other.keyPair.privateKey, message);

describe("checkPayerSignature", () => {
  it.each([
    { name: "the payer's signature of the message", bytes: message, signatures: { [payer.address]: payerSignature }, who: payer.address, reject: undefined },
    { name: "a message changed after signing", bytes: flipped, signatures: { [payer.address]: payerSignature }, who: payer.address, reject: `the payer's signature does not verify for ${payer.address}` },
    { name: "another key's signature in the payer's slot", bytes: message, signatures: { [payer.address]: otherSignature }, who: payer.address, reject: `the payer's signature does not verify for ${payer.address}` },
    { name: "the payer's slot left unsigned", bytes: message, signatures: { [payer.address]: null }, who: payer.address, reject: `the transaction is not signed by the payer ${payer.address}` },
    { name: "an authority that is not a signer", bytes: message, signatures: { [other.address]: otherSignature }, who: payer.address, reject: `the transaction is not signed by the payer ${payer.address}` },
    { name: "an authority that is no ed25519 key", bytes: message, signatures: { [notAPoint]: payerSignature }, who: notAPoint, reject: `the payer's signature does not verify for ${notAPoint}` },
  ])("$name", async ({ bytes, signatures, who, reject }) => {
    const answer = checkPayerSignature(tx(bytes, signatures), authority(who));
    expect(answer).toEqual(reject === undefined ? undefined : { reason: Reason.svmSignature, message: reject });
    // And again, from the cached key.
    expect(checkPayerSignature(tx(bytes, signatures), authority(who))).toEqual(answer);
    const signature = signatures[who];
    if (signature) expect(await kitVerifies(who, signature, bytes)).toBe(answer === undefined);
  });

  it("agrees with kit's WebCrypto verify on changed messages and signatures", async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: message.length + 63 }), fc.nat({ max: 7 }), fc.boolean(), async (at, bit, change) => {
        const bytes = Uint8Array.from(message);
        const signature = Uint8Array.from(payerSignature) as SignatureBytes;
        if (change) {
          if (at < bytes.length) bytes[at] ^= 1 << bit;
          else signature[at - bytes.length] ^= 1 << bit;
        }
        const answer = checkPayerSignature(tx(bytes, { [payer.address]: signature }), authority(payer.address));
        expect(answer === undefined).toBe(await kitVerifies(payer.address, signature, bytes));
        expect(answer === undefined).toBe(!change);
      }),
      { numRuns: 200 },
    );
  });
});
