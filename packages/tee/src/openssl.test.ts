/**
 * Interoperability with an independent implementation: the OpenSSL command line (a child process,
 * hence an integration test). It signs RSA-PSS the way the gateway's Python `cryptography` does and
 * OpenGradient's Go precompile verifies (SHA-256 of the 32-byte keccak message, salt 32), and it
 * checks the TestAuthority's certificate chain on its own.
 */
import { execFileSync } from "node:child_process";
import { createHash, X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { decode } from "cborg";
import { CBOR_DECODE } from "./cose.ts";
import { encodeBase64, generateGatewayKey, inferenceMessageHash, signRsaPss, TestAuthority, verifyGatewaySignature } from "./index.ts";

const dir = mkdtempSync(join(tmpdir(), "tee-openssl-"));
const file = (name: string, content?: string | Uint8Array) => {
  const path = join(dir, name);
  if (content !== undefined) writeFileSync(path, content);
  return path;
};
const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: ["ignore", "pipe", "pipe"] }).toString();
const PSS = ["-pkeyopt", "rsa_padding_mode:pss", "-pkeyopt", "rsa_pss_saltlen:32", "-pkeyopt", "digest:sha256"];

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("RSA-PSS as OpenSSL makes and checks it", () => {
  const gw = generateGatewayKey();
  const IN = `0x${"ab".repeat(32)}` as const;
  const OUT = `0x${"cd".repeat(32)}` as const;
  const message = inferenceMessageHash(IN, OUT, 1_763_779_200n);
  const digest = createHash("sha256").update(Buffer.from(message.slice(2), "hex")).digest();
  const key = file("key.pem", gw.privateKeyPem);

  it("verifies a signature made by openssl pkeyutl", () => {
    openssl("pkeyutl", "-sign", "-inkey", key, ...PSS, "-in", file("digest.bin", digest), "-out", file("sig.bin"));
    const signature = encodeBase64(new Uint8Array(readFileSync(file("sig.bin"))));
    expect(verifyGatewaySignature({ publicKey: gw.publicKey, inputHash: IN, outputHash: OUT, timestamp: 1_763_779_200n, signature })).toEqual({ ok: true });
  });

  it("makes signatures openssl pkeyutl verifies", () => {
    const signature = Buffer.from(signRsaPss(gw.privateKeyPem, message), "base64");
    const out = openssl("pkeyutl", "-verify", "-inkey", key, ...PSS, "-in", file("digest2.bin", digest), "-sigfile", file("sig2.bin", signature));
    expect(out).toMatch(/Signature Verified Successfully/);
  });
});

describe("TestAuthority's certificates as OpenSSL reads them", () => {
  it("chain from the signing certificate through the intermediate to the root", async () => {
    const authority = await TestAuthority.create();
    const doc = await authority.attest({ signingKey: new Uint8Array([1]) });
    const payload = decode(decode(doc, CBOR_DECODE)[2], CBOR_DECODE) as Map<string, unknown>;
    const pem = (der: Uint8Array) => new X509Certificate(der).toString();
    const out = openssl(
      "verify",
      "-CAfile",
      file("root.pem", authority.rootPem),
      "-untrusted",
      file("inter.pem", pem(authority.intermediateDer)),
      file("leaf.pem", pem(payload.get("certificate") as Uint8Array)),
    );
    expect(out).toMatch(/OK/);
  });
});
