/** The registration and heartbeat bodies as the routes receive them: pure parsing, each refusal with its reason. */
import { describe, expect, it } from "vitest";
import { toHex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { generateGatewayKey, TeeType } from "@facilitator/tee";
import { parseHeartbeat } from "./heartbeat.ts";
import { parseRegistration } from "./tee-registrar.ts";

const gw = generateGatewayKey();
const body = { attestationDocument: "hKFhAaA=", signingKey: toHex(gw.publicKey) };

describe("parseRegistration", () => {
  it("reads a gateway's registration, and a secp256k1 TEE's", () => {
    const parsed = parseRegistration({ ...body, teeType: "aws-nitro", endpoint: "https://gw.example", paymentAddress: "0x00000000000000000000000000000000000000aa" });
    expect(parsed).toMatchObject({ ok: true, value: { document: body.attestationDocument, teeType: TeeType.AwsNitro, endpoint: "https://gw.example", key: { scheme: "rsa-pss-sha256" } } });
    const secp = parseRegistration({ ...body, signingKey: privateKeyToAccount(`0x${"55".repeat(32)}`).publicKey });
    expect(secp).toMatchObject({ ok: true, value: { key: { scheme: "secp256k1-eip712" } } });
  });

  it.each<[string, unknown, string]>([
    ["a body that is not an object", [body], "invalid_registration"],
    ["an unknown field", { ...body, pcrs: {} }, "invalid_registration"],
    ["no document", { ...body, attestationDocument: "" }, "invalid_registration"],
    ["no key", { attestationDocument: body.attestationDocument }, "invalid_registration"],
    ["a key that is not one", { ...body, signingKey: "0x1234" }, "invalid_signing_key"],
    ["Intel TDX (not yet)", { ...body, teeType: "intel-tdx" }, "unsupported_tee_type"],
    ["an endpoint that is not http(s)", { ...body, endpoint: "ftp://gw" }, "invalid_registration"],
    ["a payment address that is not one", { ...body, paymentAddress: "0x12" }, "invalid_registration"],
    ["an empty TLS certificate", { ...body, tlsCertificate: "" }, "invalid_registration"],
  ])("refuses %s", (_name, input, reason) => {
    expect(parseRegistration(input)).toMatchObject({ ok: false, reason });
  });
});

describe("parseHeartbeat", () => {
  const beat = { teeId: gw.teeId, timestamp: "1763779200", signature: Buffer.from("sig").toString("base64") };

  it("reads the gateway's body, its timestamp as a string or a number", () => {
    expect(parseHeartbeat({ ...beat, contractAddress: "0x00000000000000000000000000000000000000aa" })).toMatchObject({ ok: true, value: { teeId: gw.teeId, timestamp: 1_763_779_200n } });
    expect(parseHeartbeat({ ...beat, timestamp: 1_763_779_200 })).toMatchObject({ ok: true, value: { timestamp: 1_763_779_200n } });
  });

  it.each<[string, unknown]>([
    ["a short teeId", { ...beat, teeId: "0x12" }],
    ["a negative timestamp", { ...beat, timestamp: "-1" }],
    ["a timestamp past uint64", { ...beat, timestamp: (2n ** 64n).toString() }],
    ["a signature that is not base64", { ...beat, signature: "not base64!" }],
    ["a contract that is not an address", { ...beat, contractAddress: "registry" }],
    ["no body", null],
  ])("refuses %s", (_name, input) => {
    expect(parseHeartbeat(input)).toMatchObject({ ok: false, reason: "invalid_heartbeat" });
  });
});
