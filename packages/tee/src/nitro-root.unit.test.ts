import { X509Certificate } from "node:crypto";
import { describe, expect, it } from "vitest";
import { AWS_NITRO_ROOT_PEM, AWS_NITRO_ROOT_SHA256 } from "./nitro-root.ts";
import { rootFingerprint } from "./chain.ts";

describe("the AWS Nitro root", () => {
  it("has the SHA-256 fingerprint AWS publishes", () => {
    expect(rootFingerprint(AWS_NITRO_ROOT_PEM)).toBe(AWS_NITRO_ROOT_SHA256);
    const cert = new X509Certificate(AWS_NITRO_ROOT_PEM);
    expect(cert.fingerprint256).toBe("64:1A:03:21:A3:E2:44:EF:E4:56:46:31:95:D6:06:31:7E:D7:CD:CC:3C:17:56:E0:98:93:F3:C6:8F:79:BB:5B");
    expect(cert.subject).toContain("CN=aws.nitro-enclaves");
    expect(cert.ca).toBe(true);
    expect(new Date(cert.validTo).getUTCFullYear()).toBe(2049);
  });
});
