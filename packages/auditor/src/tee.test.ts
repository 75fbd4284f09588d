import { describe, expect, it } from "vitest";
import { keccak256, toHex, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { teeAttestationDomain, teeAttestationTypes, ZERO_BYTES32, type InferenceLeaf } from "./formats.ts";
import { checkTeeSignature, describeTeeVerdict } from "./tee.ts";

const teeKey = keccak256(toHex("tee key")) as Hex;
const otherKey = keccak256(toHex("other key")) as Hex;
const tee = privateKeyToAccount(teeKey);
const other = privateKeyToAccount(otherKey);
const teeId = keccak256(toHex("tee-1"));
const registry = { [teeId]: tee.address };
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

const base = { teeId, inputHash: keccak256(toHex("in")), outputHash: keccak256(toHex("out")), timestamp: 1_700_000_000n };
const sign = (signer: typeof tee, message = base) =>
  signer.signTypedData({ domain: teeAttestationDomain, types: teeAttestationTypes, primaryType: "TeeAttestation", message });

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
    ["a signature over another output", { ...base, teeSignature: await sign(tee, { ...base, outputHash: keccak256(toHex("x")) }) }, "wrong-signer", /registered to/],
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

  it("matches teeIds whatever their hex case", async () => {
    const upper = { [`0x${teeId.slice(2).toUpperCase()}`]: tee.address };
    expect((await checkTeeSignature({ ...base, teeSignature: good }, upper)).status).toBe("valid");
  });
});
