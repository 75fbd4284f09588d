/**
 * A stand-in for AWS's Nitro attestation PKI, for the local world and tests: nothing of AWS is
 * reachable here, and real documents carry certificates that expire within hours.
 *
 * It makes a P-384 root CA and intermediate (like AWS's root and regional CAs) and, per document, a
 * P-384 signing certificate (like the per-enclave one, valid three hours), and builds documents in
 * the Nitro format: a COSE_Sign1 (ES384) over the payload map of the Nitro specification, with
 * chosen PCRs, nonce, timestamp and nitriding's user_data binding a signing key. A verifier configured
 * with `rootPem` accepts them exactly as it accepts AWS's; one configured with the AWS root refuses
 * them (`attestation_untrusted_root`).
 */
import "reflect-metadata";
import { createHash, webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { encode } from "cborg";
import type { Hex } from "viem";
import { nitridingUserData } from "./binding.ts";
import { COSE_ALG_ES384, sigStructure } from "./cose.ts";
import { asBytes } from "./encoding.ts";

const crypto = webcrypto as unknown as Crypto;
const EC = { name: "ECDSA", namedCurve: "P-384" } as const;
const ES384 = { name: "ECDSA", hash: "SHA-384" } as const;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export type Pcrs = Readonly<Record<0 | 1 | 2, Hex>> & Readonly<Partial<Record<number, Hex>>>;

/** Deterministic, distinct PCR0-2 (48 bytes each) for an image named `label`. */
export function testPcrs(label: string): Pcrs {
  const pcr = (i: number): Hex => `0x${createHash("sha384").update(`${label}/PCR${i}`).digest("hex")}`;
  return { 0: pcr(0), 1: pcr(1), 2: pcr(2) };
}

export interface AttestOptions {
  /** The key the document binds (user_data, nitriding's layout): DER SPKI or 65-byte secp256k1 point. */
  signingKey: Uint8Array | Hex;
  tlsCertificate?: Uint8Array;
  nonce?: Uint8Array | Hex;
  /** PCR values; PCR0-15 not given are zero, as an enclave's unused registers are. Default testPcrs("local"). */
  pcrs?: Pcrs;
  /** When the document was made. Default: now. */
  timestamp?: Date;
  /** The signing certificate's window. Default: 5 minutes before `timestamp` to 3 hours after. */
  leafValidity?: { notBefore: Date; notAfter: Date };
  moduleId?: string;
  /** Replaces the nitriding user_data (to build documents that bind nothing, or something else). */
  userData?: Uint8Array;
  /** Changes the payload map before it is signed: for documents that break one rule of the format. */
  editPayload?: (payload: Map<string, unknown>) => void;
}

interface Ca {
  cert: x509.X509Certificate;
  keys: CryptoKeyPair;
}

const keyPair = () => crypto.subtle.generateKey(EC, true, ["sign", "verify"]) as Promise<CryptoKeyPair>;
const der = (cert: x509.X509Certificate) => new Uint8Array(cert.rawData);
let serial = 0;
const nextSerial = () => `${Date.now().toString(16)}${(++serial).toString(16).padStart(4, "0")}`;

async function issue(issuer: Ca, subject: string, publicKey: CryptoKey, window: { notBefore: Date; notAfter: Date }, ca: boolean) {
  const usage = ca ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign : x509.KeyUsageFlags.digitalSignature;
  return x509.X509CertificateGenerator.create(
    {
      serialNumber: nextSerial(),
      subject,
      issuer: issuer.cert.subjectName,
      ...window,
      publicKey,
      signingKey: issuer.keys.privateKey,
      signingAlgorithm: ES384,
      extensions: [new x509.BasicConstraintsExtension(ca, ca ? 0 : undefined, true), new x509.KeyUsagesExtension(usage, true)],
    },
    crypto,
  );
}

export class TestAuthority {
  /** The root certificate a verifier must be configured with to accept this authority's documents. */
  readonly rootPem: string;
  readonly rootDer: Uint8Array;
  readonly intermediateDer: Uint8Array;

  private constructor(
    private readonly root: Ca,
    private readonly intermediate: Ca,
    readonly name: string,
  ) {
    this.rootPem = root.cert.toString("pem");
    this.rootDer = der(root.cert);
    this.intermediateDer = der(intermediate.cert);
  }

  /** A new root and intermediate, valid from `notBefore` (default: a day ago) to `notAfter` (default: in ten years). */
  static async create(opts: { name?: string; notBefore?: Date; notAfter?: Date } = {}): Promise<TestAuthority> {
    const name = opts.name ?? "local-nitro";
    const window = { notBefore: opts.notBefore ?? new Date(Date.now() - DAY), notAfter: opts.notAfter ?? new Date(Date.now() + 3650 * DAY) };
    const rootKeys = await keyPair();
    const rootCert = await x509.X509CertificateGenerator.createSelfSigned(
      {
        serialNumber: nextSerial(),
        name: `C=US, O=Test, OU=${name}, CN=${name}.root`,
        ...window,
        keys: rootKeys,
        signingAlgorithm: ES384,
        extensions: [
          new x509.BasicConstraintsExtension(true, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        ],
      },
      crypto,
    );
    const root = { cert: rootCert, keys: rootKeys };
    const interKeys = await keyPair();
    const interCert = await issue(root, `C=US, O=Test, OU=${name}, CN=${name}.intermediate`, interKeys.publicKey, window, true);
    return new TestAuthority(root, { cert: interCert, keys: interKeys }, name);
  }

  /** A Nitro-format attestation document (COSE_Sign1 bytes; base64 them for the gateway's text form). */
  async attest(opts: AttestOptions): Promise<Uint8Array> {
    const timestamp = opts.timestamp ?? new Date();
    const leafKeys = await keyPair();
    const validity = opts.leafValidity ?? { notBefore: new Date(timestamp.getTime() - 5 * 60_000), notAfter: new Date(timestamp.getTime() + 3 * HOUR) };
    const leaf = await issue(this.intermediate, `C=US, O=Test, OU=${this.name}, CN=${this.name}.enclave`, leafKeys.publicKey, validity, false);

    const given = opts.pcrs ?? testPcrs("local");
    const pcrs = new Map<number, Uint8Array>();
    for (let i = 0; i < 16; i++) pcrs.set(i, given[i] ? asBytes(given[i]!, `PCR${i}`) : new Uint8Array(48));

    const fields = new Map<string, unknown>([
      ["module_id", opts.moduleId ?? `${this.name}-enclave`],
      ["digest", "SHA384"],
      ["timestamp", timestamp.getTime()],
      ["pcrs", pcrs],
      ["certificate", der(leaf)],
      ["cabundle", [der(this.root.cert), der(this.intermediate.cert)]],
      ["public_key", null],
      ["user_data", opts.userData ?? nitridingUserData(asBytes(opts.signingKey, "signingKey"), opts.tlsCertificate)],
      ["nonce", opts.nonce === undefined ? null : asBytes(opts.nonce, "nonce")],
    ]);
    opts.editPayload?.(fields);
    const payload = encode(fields);
    const protectedHeader = encode(new Map([[1, COSE_ALG_ES384]]));
    const signature = new Uint8Array(await crypto.subtle.sign(ES384, leafKeys.privateKey, new Uint8Array(sigStructure({ protectedHeader, payload }))));
    return encode([protectedHeader, new Map(), payload, signature]);
  }

  /** SHA-256 fingerprint of the root, as `verifyNitroAttestation` reports `rootSha256`. */
  get rootSha256(): string {
    return createHash("sha256").update(this.rootDer).digest("hex");
  }
}
