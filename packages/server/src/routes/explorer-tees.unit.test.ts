import { describe, expect, it } from "vitest";
import type { Hex } from "viem";
import type { TeeEvidence } from "@facilitator/auditor";
import { isTeeId, teeView } from "./explorer-tees.ts";

const teeId: Hex = `0x${"ab".repeat(32)}`;
const registry = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
const entry = {
  signingKey: "0x04" as Hex,
  scheme: 1,
  teeType: 1,
  registeredBlock: 10n,
  registeredAt: 1_700_000_000n,
  revokedBlock: 0n,
  measurement: `0x${"cd".repeat(32)}` as Hex,
  attestationHash: `0x${"ef".repeat(32)}` as Hex,
  attestationBlobId: "blob-1",
};
const evidence = (over: Partial<TeeEvidence> = {}): TeeEvidence => ({
  teeId,
  entry,
  measurement: { status: 2, approvedBlock: 5n, revokedBlock: 20n },
  attestation: { ok: true, rootSha256: "01".repeat(32), registers: { PCR0: "0x00" } },
  ...over,
});
const scrub = (s: string) => s.replace(/https?:\/\/\S+/g, "[url]");

describe("teeView: what the page is told of a TEE", () => {
  it("names the type, the scheme, the measurement's status and blocks, and hands the document over as base64", () => {
    expect(teeView(teeId, registry, evidence(), new Uint8Array([1, 2, 3]), scrub)).toEqual({
      teeId,
      registry,
      registered: true,
      teeType: 1,
      teeTypeName: "AWS Nitro",
      measurementRule: "keccak256(PCR0 ‖ PCR1 ‖ PCR2)",
      scheme: "secp256k1-eip712",
      signingKey: "0x04",
      measurement: entry.measurement,
      measurementStatus: "revoked",
      measurementApprovedBlock: "5",
      measurementRevokedBlock: "20",
      registeredBlock: "10",
      registeredAt: "1700000000",
      revokedBlock: "0",
      attestationBlobId: "blob-1",
      attestationHash: entry.attestationHash,
      attestation: { verified: true, rootSha256: "01".repeat(32), registers: { PCR0: "0x00" } },
      document: "AQID",
    });
  });

  it.each<[string, TeeEvidence, object]>([
    ["a TEE the registry never registered", { teeId }, { registered: false, teeId, registry }],
    ["a failure naming the aggregator: scrubbed", evidence({ attestation: { ok: false, detail: "cannot reach the aggregator at http://walrus.internal:9000/v1/blobs/x" } }), { attestation: { verified: false, detail: "cannot reach the aggregator at [url]" } }],
    ["a type this code has no verifier for", evidence({ entry: { ...entry, teeType: 2, scheme: 7 } }), { teeTypeName: "TEE type 2", measurementRule: undefined, scheme: "scheme 7" }],
    ["a measurement never approved", evidence({ measurement: { status: 0, approvedBlock: 0n, revokedBlock: 0n } }), { measurementStatus: "not approved", measurementApprovedBlock: "0" }],
  ])("%s", (_name, ev, expected) => {
    const view = teeView(teeId, registry, ev, undefined, scrub);
    expect(view).toMatchObject(expected);
    expect(view).not.toHaveProperty("document");
  });

  it.each<[string, boolean]>([
    [teeId, true],
    [teeId.toUpperCase().replace("0X", "0x"), true],
    [`0x${"0".repeat(64)}`, false],
    ["0x1234", false],
    [`${teeId}00`, false],
    ["<script>", false],
  ])("isTeeId(%s) is %s", (s, ok) => {
    expect(isTeeId(s)).toBe(ok);
  });
});
