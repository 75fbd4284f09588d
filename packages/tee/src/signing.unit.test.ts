import { constants, createPublicKey, generateKeyPairSync, sign } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { keccak256, type Hex } from "viem";
import {
  decodeBase64,
  encodeBase64,
  generateGatewayKey,
  heartbeatMessageHash,
  inferenceMessageHash,
  signRsaPss,
  teeIdOf,
  verifyGatewaySignature,
  verifyHeartbeatSignature,
  verifyRsaPss,
  type GatewayKey,
  type SignatureVerdict,
} from "./index.ts";

const IN: Hex = `0x${"11".repeat(32)}`;
const OUT: Hex = `0x${"22".repeat(32)}`;
const TS = 1_763_779_200n;

let gw: GatewayKey;
let other: GatewayKey;
beforeAll(() => {
  gw = generateGatewayKey();
  other = generateGatewayKey();
});

describe("the gateway's messages", () => {
  it("teeId is keccak256 of the DER SubjectPublicKeyInfo (the PEM body, base64-decoded)", () => {
    const pemBody = createPublicKey(gw.privateKeyPem).export({ format: "pem", type: "spki" }).toString().replace(/-----[^-]+-----|\s/g, "");
    expect(gw.teeId).toBe(keccak256(decodeBase64(pemBody)!));
    expect(teeIdOf(gw.publicKey)).toBe(gw.teeId);
  });

  it("an inference message is keccak256(inputHash ‖ outputHash ‖ timestamp as 32 big-endian bytes)", () => {
    const packed = Buffer.concat([Buffer.from(IN.slice(2), "hex"), Buffer.from(OUT.slice(2), "hex"), Buffer.from(TS.toString(16).padStart(64, "0"), "hex")]);
    expect(inferenceMessageHash(IN, OUT, TS)).toBe(keccak256(packed));
  });

  it("a heartbeat message is keccak256(teeId ‖ timestamp as 32 big-endian bytes)", () => {
    const packed = Buffer.concat([Buffer.from(gw.teeId.slice(2), "hex"), Buffer.from(TS.toString(16).padStart(64, "0"), "hex")]);
    expect(heartbeatMessageHash(gw.teeId, TS)).toBe(keccak256(packed));
  });

  it("refuses hashes that are not 32 bytes and timestamps outside uint256", () => {
    expect(() => inferenceMessageHash("0x11", OUT, TS)).toThrow(/inputHash/);
    expect(() => inferenceMessageHash(IN, OUT, -1n)).toThrow(/uint256/);
    expect(() => heartbeatMessageHash(gw.teeId, 2n ** 256n)).toThrow(/uint256/);
  });
});

/** PSS signature of a 32-byte message with an arbitrary salt length (the gateway's is 32). */
const pss = (msg: Hex, saltLength: number, key = gw.privateKeyPem) =>
  encodeBase64(sign("sha256", Buffer.from(msg.slice(2), "hex"), { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength }));

describe("verifyGatewaySignature", () => {
  const msg = () => inferenceMessageHash(IN, OUT, TS);
  const good = () => ({ publicKey: gw.publicKey, inputHash: IN, outputHash: OUT, timestamp: TS, signature: signRsaPss(gw.privateKeyPem, msg()) });

  it("accepts the gateway's signature, as base64 text or bytes", () => {
    expect(verifyGatewaySignature(good())).toEqual({ ok: true });
    expect(verifyGatewaySignature({ ...good(), signature: decodeBase64(good().signature)! })).toEqual({ ok: true });
    expect(verifyGatewaySignature({ ...good(), signature: pss(msg(), 32) })).toEqual({ ok: true });
  });

  const rows: { name: string; change: () => Partial<ReturnType<typeof good>>; reason: Exclude<SignatureVerdict, { ok: true }>["reason"] }[] = [
    { name: "another TEE's key", change: () => ({ publicKey: other.publicKey }), reason: "signature_invalid" },
    { name: "another input hash", change: () => ({ inputHash: OUT }), reason: "signature_invalid" },
    { name: "another output hash", change: () => ({ outputHash: IN }), reason: "signature_invalid" },
    { name: "another timestamp", change: () => ({ timestamp: TS + 1n }), reason: "signature_invalid" },
    { name: "salt length 0", change: () => ({ signature: pss(msg(), 0) }), reason: "signature_invalid" },
    { name: "the longest salt", change: () => ({ signature: pss(msg(), constants.RSA_PSS_SALTLEN_MAX_SIGN) }), reason: "signature_invalid" },
    {
      name: "PKCS#1 v1.5 instead of PSS",
      change: () => ({ signature: encodeBase64(sign("sha256", Buffer.from(msg().slice(2), "hex"), gw.privateKeyPem)) }),
      reason: "signature_invalid",
    },
    {
      name: "SHA-384 inside PSS instead of SHA-256",
      change: () => ({ signature: encodeBase64(sign("sha384", Buffer.from(msg().slice(2), "hex"), { key: gw.privateKeyPem, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 })) }),
      reason: "signature_invalid",
    },
    { name: "base64 with a stray character", change: () => ({ signature: `${good().signature.slice(0, 10)}*${good().signature.slice(11)}` }), reason: "signature_malformed" },
    { name: "a signature of the wrong length", change: () => ({ signature: encodeBase64(new Uint8Array(255)) }), reason: "signature_malformed" },
    {
      name: "a 1024-bit key",
      change: () => ({ publicKey: new Uint8Array(generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({ format: "der", type: "spki" })) }),
      reason: "signing_key_invalid",
    },
    {
      name: "an EC key",
      change: () => ({ publicKey: new Uint8Array(generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ format: "der", type: "spki" })) }),
      reason: "signing_key_invalid",
    },
    { name: "bytes that are no key", change: () => ({ publicKey: new Uint8Array([1, 2, 3]) }), reason: "signing_key_invalid" },
  ];

  it.each(rows)("refuses $name: $reason", ({ change, reason }) => {
    expect(verifyGatewaySignature({ ...good(), ...change() })).toMatchObject({ ok: false, reason });
  });
});

describe("verifyHeartbeatSignature", () => {
  it("accepts the gateway's heartbeat and refuses it for another TEE, time or key", () => {
    const signature = signRsaPss(gw.privateKeyPem, heartbeatMessageHash(gw.teeId, TS));
    const hb = { publicKey: gw.publicKey, teeId: gw.teeId, timestamp: TS, signature };
    expect(verifyHeartbeatSignature(hb)).toEqual({ ok: true });
    expect(verifyHeartbeatSignature({ ...hb, teeId: other.teeId })).toMatchObject({ ok: false, reason: "signature_invalid" });
    expect(verifyHeartbeatSignature({ ...hb, timestamp: TS - 1n })).toMatchObject({ ok: false, reason: "signature_invalid" });
    expect(verifyHeartbeatSignature({ ...hb, publicKey: other.publicKey })).toMatchObject({ ok: false, reason: "signature_invalid" });
    // An inference signature is no heartbeat, even over the same numbers.
    expect(verifyRsaPss(gw.publicKey, inferenceMessageHash(gw.teeId, `0x${"00".repeat(32)}`, TS), signature)).toMatchObject({ ok: false });
  });
});

describe("decodeBase64", () => {
  it.each([
    ["QUJD", true],
    ["QUI=", true],
    ["QQ==", true],
    ["", true],
    ["QUJ", false],
    ["QU I=", false],
    ["QUI", false],
    ["QUJD\n", false],
    ["QU-_", false],
  ])("%j -> %s", (text, ok) => {
    expect(decodeBase64(text) !== undefined).toBe(ok);
  });
});
