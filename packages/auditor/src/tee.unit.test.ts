import { describe, expect, it } from "vitest";
import { keccak256, toHex, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import {
  teeAttestationDomain,
  teeAttestationDomainV1,
  teeAttestationTypes,
  teeAttestationTypesV1,
  ZERO_BYTES32,
  type InferenceLeaf,
} from "./formats.ts";
import { checkTeeSignature, describeTeeVerdict } from "./tee.ts";

const teeKey = keccak256(toHex("tee key")) as Hex;
const otherKey = keccak256(toHex("other key")) as Hex;
const tee = privateKeyToAccount(teeKey);
const other = privateKeyToAccount(otherKey);
const teeId = keccak256(toHex("tee-1"));
const registry = { [teeId]: tee.address };
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

const message = { teeId, inputHash: keccak256(toHex("in")), outputHash: keccak256(toHex("out")), timestamp: 1_700_000_000n, settlementType: "settle-batch", metadataHash: ZERO_BYTES32 };
const base = { version: 2 as const, ...message };
const sign = (signer: typeof tee, m = message) =>
  signer.signTypedData({ domain: teeAttestationDomain, types: teeAttestationTypes, primaryType: "TeeAttestation", message: m });

/** The same signature with s -> n - s and v flipped: recovers the same key, but OpenZeppelin refuses it. */
function malleable(sig: Hex): Hex {
  const s = BigInt(`0x${sig.slice(66, 130)}`);
  const v = parseInt(sig.slice(130), 16);
  return `${sig.slice(0, 66)}${(N - s).toString(16).padStart(64, "0")}${(v === 27 ? 28 : 27).toString(16)}` as Hex;
}

describe("checkTeeSignature", async () => {
  const good = await sign(tee);
  const cases: [string, InferenceLeaf, string, RegExp][] = [
    ["the registered key's signature", { ...base, teeSignature: good }, "valid", /the key registered for TEE/],
    ["no TEE fields at all", { ...base, teeId: ZERO_BYTES32, teeSignature: "0x" }, "absent", /no TEE signature/],
    ["another key's signature", { ...base, teeSignature: await sign(other) }, "wrong-signer", new RegExp(`signed by ${other.address}, but TEE .* is registered to ${tee.address}`)],
    ["a signature over another output", { ...base, teeSignature: await sign(tee, { ...message, outputHash: keccak256(toHex("x")) }) }, "wrong-signer", /registered to/],
    ["a signature over another settlement type", { ...base, teeSignature: await sign(tee, { ...message, settlementType: "settle" }) }, "wrong-signer", /registered to/],
    ["a signature over metadata", { ...base, teeSignature: await sign(tee, { ...message, metadataHash: keccak256(toHex("m")) }) }, "wrong-signer", /registered to/],
    ["a v1 attestation in a v2 leaf", { ...base, teeSignature: await tee.signTypedData({ domain: teeAttestationDomainV1, types: teeAttestationTypesV1, primaryType: "TeeAttestation", message: { teeId, inputHash: message.inputHash, outputHash: message.outputHash, timestamp: message.timestamp } }) }, "wrong-signer", /registered to/],
    ["the v 0/1 spelling in a v2 leaf", { ...base, teeSignature: `${good.slice(0, 130)}0${parseInt(good.slice(130), 16) - 27}` as Hex }, "malformed", /v = [01], not 27 or 28/],
    ["a signature over another timestamp", { ...base, timestamp: 1n, teeSignature: good }, "wrong-signer", /registered to/],
    ["a TEE the auditor does not know", { ...base, teeId: keccak256(toHex("tee-2")), teeSignature: good }, "unknown-tee", /not in the configured registry/],
    ["a teeId without signature", { ...base, teeSignature: "0x" }, "malformed", /carries no signature/],
    ["a 64-byte signature", { ...base, teeSignature: good.slice(0, 130) as Hex }, "malformed", /64 bytes, not 65/],
    ["the malleable twin of a valid signature", { ...base, teeSignature: malleable(good) }, "malformed", /high s value/],
  ];
  it.each(cases)("%s -> %s", async (_name, leaf, status, detail) => {
    const verdict = await checkTeeSignature(leaf, registry);
    expect(verdict.status).toBe(status);
    expect(describeTeeVerdict(verdict, leaf.teeId)).toMatch(detail);
  });

  it("checks v1 leaves (older dumps) against attestation v1", async () => {
    const v1Message = { teeId, inputHash: message.inputHash, outputHash: message.outputHash, timestamp: message.timestamp };
    const v1Sig = await tee.signTypedData({ domain: teeAttestationDomainV1, types: teeAttestationTypesV1, primaryType: "TeeAttestation", message: v1Message });
    const v1Leaf: InferenceLeaf = { version: 1, ...v1Message, teeSignature: v1Sig };
    expect((await checkTeeSignature(v1Leaf, registry)).status).toBe("valid");
    expect((await checkTeeSignature({ ...v1Leaf, teeSignature: good }, registry)).status).toBe("wrong-signer");
    // v1 dumps may hold the 0/1 spelling: read as before.
    expect((await checkTeeSignature({ ...v1Leaf, teeSignature: `${v1Sig.slice(0, 130)}0${parseInt(v1Sig.slice(130), 16) - 27}` as Hex }, registry)).status).toBe("valid");
  });

  it("matches teeIds whatever their hex case", async () => {
    const upper = { [`0x${teeId.slice(2).toUpperCase()}`]: tee.address };
    expect((await checkTeeSignature({ ...base, teeSignature: good }, upper)).status).toBe("valid");
  });
});
