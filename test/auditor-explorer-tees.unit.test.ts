/**
 * The explorer page's TEE checks (explorer-assets/tees.js, plain JS inlined in the page), run here in
 * a VM context: its ABI decoding against viem's encoding of the registry's answers, its judgments at the
 * anchoring block (the auditor's rules), the document hash, and the RSA-PSS check through WebCrypto.
 */
import { webcrypto } from "node:crypto";
import { describe, expect, it } from "vitest";
import { encodeFunctionResult, keccak256, stringToHex, toHex, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { generateGatewayKey, inferenceMessageHash, signRsaPss, TEE_REGISTRY_ABI } from "@facilitator/tee";
import { teeView } from "../packages/server/src/routes/explorer-tees.ts";
import { loadExplorerTees } from "./helpers/explorer-page.ts";

const page = loadExplorerTees();
const subtle = webcrypto.subtle as unknown as SubtleCrypto;
const gw = generateGatewayKey();
const other = generateGatewayKey();
const h = (s: string) => keccak256(toHex(s));
const document = new TextEncoder().encode("an attestation document");

const entry = {
  signingKey: toHex(gw.publicKey),
  scheme: 0,
  teeType: 1,
  registeredBlock: 10n,
  registeredAt: 1_700_000_000n,
  lastHeartbeat: 0n,
  revokedBlock: 0n,
  measurement: h("measurement"),
  attestationHash: keccak256(document),
  attestationBlobId: stringToHex("blob-<b>1</b>"),
  endpoint: "https://gw.example/<script>",
  paymentAddress: privateKeyToAccount(h("payee")).address,
};
const tee = { ...entry, attestationBlobId: undefined, endpoint: undefined, paymentAddress: undefined };
const approved = { status: 1, approvedBlock: 5n, revokedBlock: 0n };
const view = {
  registered: true,
  teeId: gw.teeId,
  attestationBlobId: "blob-<b>1</b>",
  attestation: { verified: true, rootSha256: "ab".repeat(32), registers: { PCR0: `0x${"01".repeat(48)}` } },
  document: Buffer.from(document).toString("base64"),
};

describe("the registry's answers, decoded in the page", () => {
  it("getTee: every field the checks use, whatever the dynamic fields hold", () => {
    const hex = encodeFunctionResult({ abi: TEE_REGISTRY_ABI, functionName: "getTee", result: entry });
    const { attestationBlobId: _b, endpoint: _e, paymentAddress: _p, ...fields } = entry;
    expect(page.decodeTee(hex)).toEqual({ ...fields, signingKey: fields.signingKey.toLowerCase() });
    expect(page.GET_TEE).toBe(keccak256(toHex("getTee(bytes32)")).slice(0, 10));
  });

  it("measurementStatus: status and blocks", () => {
    const hex = encodeFunctionResult({ abi: TEE_REGISTRY_ABI, functionName: "measurementStatus", result: { status: 2, approvedBlock: 5n, revokedBlock: 9n } });
    expect(page.decodeMeasurement(hex)).toEqual({ status: 2, approvedBlock: 5n, revokedBlock: 9n });
    expect(page.MEASUREMENT_STATUS).toBe(keccak256(toHex("measurementStatus(uint8,bytes32)")).slice(0, 10));
  });

  it.each([["0x"], ["0x1234"], [`0x${"00".repeat(31)}20`], [`0x${"00".repeat(31)}20${"00".repeat(31)}40`]])("refuses an answer that is not a Tee: %s", (hex) => {
    expect(() => page.decodeTee(hex as Hex)).toThrow(/registry's answer/);
  });
});

describe("judged at the anchoring block, as the auditor judges", () => {
  it.each<[string, object, bigint, boolean, RegExp]>([
    ["registered before the anchor", tee, 12n, true, /registered at block 10, before the anchor \(block 12\)/],
    ["registered at the anchor's block", tee, 10n, true, /before the anchor/],
    ["registered after the anchor", tee, 9n, false, /after the record was anchored \(block 9\)/],
    ["never registered", { ...tee, registeredBlock: 0n }, 12n, false, /is not in the TEE registry/],
  ])("tee-registered: %s", (_name, t, anchor, ok, detail) => {
    expect(page.judgeRegistered(t, gw.teeId, anchor)).toMatchObject({ name: "tee-registered", ok, detail: expect.stringMatching(detail) });
  });

  it.each<[string, object, object, boolean, RegExp]>([
    ["approved before the anchor", tee, approved, true, /approved at block 5$/],
    ["revoked after the anchor", tee, { status: 2, approvedBlock: 5n, revokedBlock: 20n }, true, /revoked later, at block 20/],
    ["revoked before the anchor", tee, { status: 2, approvedBlock: 5n, revokedBlock: 11n }, false, /revoked at block 11, before the anchor/],
    ["approved after the anchor", tee, { status: 1, approvedBlock: 13n, revokedBlock: 0n }, false, /not approved at the anchoring block 12/],
    ["never approved", tee, { status: 0, approvedBlock: 0n, revokedBlock: 0n }, false, /not approved/],
    ["the TEE revoked before the anchor", { ...tee, revokedBlock: 11n }, approved, false, /TEE was revoked at block 11/],
    ["the TEE revoked after the anchor", { ...tee, revokedBlock: 13n }, approved, true, /approved at block 5/],
  ])("tee-measurement: %s", (_name, t, m, ok, detail) => {
    expect(page.judgeMeasurement(t, m, 12n)).toMatchObject({ name: "tee-measurement", ok, detail: expect.stringMatching(detail) });
  });

  it.each<[string, object | undefined, Hex | undefined, boolean, RegExp]>([
    ["the registered document, verified by the server", view, keccak256(document), true, /hashes \(in this browser\) to the registry's hash; .* verified by this explorer's server/],
    ["another document", view, h("another"), false, /not to the registry's attestation hash/],
    ["a document the server could not verify", { ...view, attestation: { verified: false, detail: "attestation_untrusted_root" } }, keccak256(document), false, /does not verify: attestation_untrusted_root/],
    ["no document", { ...view, attestation: { verified: false, detail: "cannot be fetched" } }, undefined, false, /cannot be fetched/],
    ["no view", undefined, keccak256(document), false, /no record of the TEE's attestation/],
  ])("tee-attestation: %s", (_name, v, hash, ok, detail) => {
    expect(page.judgeAttestation(tee, v, hash)).toMatchObject({ name: "tee-attestation", ok, detail: expect.stringMatching(detail) });
  });
});

describe("the record's signature in the browser", () => {
  const inputHash = h("in");
  const outputHash = h("out");
  const sign = (pem: string) => toHex(Buffer.from(signRsaPss(pem, inferenceMessageHash(inputHash, outputHash, 1_700_000_123n)), "base64"));
  const leaf = (signature: Hex, version: unknown = "gateway") => ({ version, teeId: gw.teeId, inputHash, outputHash, timestamp: "1700000123", teeSignature: signature });

  it.each<[string, object, object, SubtleCrypto | undefined, Partial<{ ok: boolean; skipped: boolean }>, RegExp]>([
    ["the gateway's RSA-PSS signature", leaf(sign(gw.privateKeyPem)), tee, subtle, { ok: true }, /verified under the registered key, in this browser/],
    ["another key's RSA-PSS signature", leaf(sign(other.privateKeyPem)), tee, subtle, { ok: false }, /not the registered key's/],
    ["a gateway leaf of a secp256k1 TEE", leaf(sign(gw.privateKeyPem)), { ...tee, scheme: 1 }, subtle, { ok: false }, /registry holds a secp256k1-eip712 key/],
    ["a v2 leaf of an RSA TEE", leaf("0x00", 2), tee, subtle, { ok: false }, /registry holds a rsa-pss-sha256 key/],
    ["a v2 leaf of a secp256k1 TEE (left to the auditor)", leaf("0x00", 2), { ...tee, scheme: 1 }, subtle, { ok: true, skipped: true }, /pnpm auditor verify checks it/],
    ["no WebCrypto (not a secure context)", leaf(sign(gw.privateKeyPem)), tee, undefined, { ok: true, skipped: true }, /not in a secure context/],
  ])("%s", async (_name, l, t, crypto, verdict, detail) => {
    expect(await page.checkSignature(l, t, crypto)).toMatchObject({ name: "tee-signature", ...verdict, detail: expect.stringMatching(detail) });
  });
});

describe("what the page shows", () => {
  it("names the type, scheme, measurement status, PCRs, registration and the server's verdict, from the server's view", () => {
    // The view exactly as the server builds it (explorer-tees.ts), so the page and the route agree.
    const evidence = {
      teeId: gw.teeId,
      entry: { ...tee, attestationBlobId: "blob-1" },
      measurement: { status: 2, approvedBlock: 5n, revokedBlock: 20n },
      attestation: { ok: true as const, rootSha256: "ab".repeat(32), registers: { PCR0: `0x${"01".repeat(48)}` as Hex } },
    };
    const rows = Object.fromEntries(page.describe(teeView(gw.teeId, "0xabc", evidence, document, (x) => x)));
    expect(rows).toMatchObject({
      TEE: gw.teeId,
      type: "AWS Nitro (measurement = keccak256(PCR0 ‖ PCR1 ‖ PCR2))",
      "key scheme": "RSA-PSS-SHA256 (the tee-gateway's)",
      measurement: `${tee.measurement}: revoked (approved at block 5, revoked at block 20)`,
      PCR0: `0x${"01".repeat(48)}`,
      registered: "block 10, 2023-11-14T22:13:20.000Z",
      attestation: `verified by this explorer's server: chains to the root with SHA-256 ${"ab".repeat(32)}`,
    });
    expect(page.describe({ registered: false, teeId: gw.teeId, registry: "0xabc" })).toEqual([["TEE", `${gw.teeId}: not in the TEE registry 0xabc`]]);
  });

  it.each<[unknown, boolean]>([
    [{ teeId: gw.teeId }, true],
    [{ teeId: `0x${"0".repeat(64)}` }, false],
    [{ teeId: "0x12" }, false],
    [undefined, false],
  ])("namesTee(%j) is %s", (leaf, names) => {
    expect(page.namesTee(leaf)).toBe(names);
  });
});
