/**
 * The certificate chain of an attestation document: `cabundle` (root first) followed by the signing
 * certificate, checked against the roots this verifier is configured with, at an injected time.
 *
 * Certificates are parsed and their signatures checked by `@peculiar/x509` (WebCrypto underneath).
 * The path rules are ours, kept to what a Nitro chain needs (RFC 5280, 6.1, without policies, name
 * constraints or revocation lists, which AWS's chain does not use): the first certificate is a
 * configured root, byte for byte; each next one names the previous one's subject as its issuer and
 * carries its signature; every issuer is a CA allowed to sign certificates (basic constraints, key
 * usage, path length); and every certificate, the root included, is valid at `now`.
 */
import "reflect-metadata"; // @peculiar/x509 resolves its services through tsyringe, which needs it
import { createHash, webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";

/** A trusted root certificate: PEM text or DER bytes. */
export type TrustedRoot = string | Uint8Array;

export type ChainRefusal = "untrusted_root" | "chain_invalid" | "certificate_expired" | "certificate_not_yet_valid";
export type ChainVerdict = { ok: true; rootSha256: string } | { ok: false; reason: ChainRefusal; message: string };

const crypto = webcrypto as unknown as Crypto;
const sha256 = (bytes: Uint8Array | ArrayBuffer) => createHash("sha256").update(new Uint8Array(bytes)).digest("hex");
const sameBytes = (a: ArrayBuffer, b: ArrayBuffer) => Buffer.from(a).equals(Buffer.from(b));

/** SHA-256 fingerprint (lower-case hex of the DER bytes) of a root given as PEM or DER. */
export function rootFingerprint(root: TrustedRoot): string {
  return sha256(new x509.X509Certificate(typeof root === "string" ? root : new Uint8Array(root)).rawData);
}

function parseAll(ders: readonly Uint8Array[]): x509.X509Certificate[] | string {
  const certs: x509.X509Certificate[] = [];
  for (const [i, der] of ders.entries()) {
    try {
      certs.push(new x509.X509Certificate(new Uint8Array(der)));
    } catch (e) {
      return `certificate ${i} of the chain cannot be parsed (${(e as Error).message})`;
    }
  }
  return certs;
}

/** Why `issuer` may not sign `child` at depth `below` (CA certificates that follow it), or undefined. */
function issuerProblem(issuer: x509.X509Certificate, below: number): string | undefined {
  const bc = issuer.getExtension(x509.BasicConstraintsExtension);
  if (!bc?.ca) return `"${issuer.subject}" issues a certificate but is not a CA`;
  if (bc.pathLength !== undefined && below > bc.pathLength) return `"${issuer.subject}" allows ${bc.pathLength} CA certificates below it, the chain has ${below}`;
  const ku = issuer.getExtension(x509.KeyUsagesExtension);
  if (ku && (ku.usages & x509.KeyUsageFlags.keyCertSign) === 0) return `"${issuer.subject}" may not sign certificates (key usage)`;
  return undefined;
}

/**
 * Verifies `leaf` through `cabundle` to one of `roots` at `now`. Refusals: `untrusted_root` (the
 * chain starts elsewhere), `chain_invalid` (unparsable, wrong issuer, bad signature, a non-CA issuer,
 * a leaf that is a CA or may not sign), `certificate_expired` / `certificate_not_yet_valid`.
 */
export async function verifyCertificateChain(
  leaf: Uint8Array,
  cabundle: readonly Uint8Array[],
  roots: readonly TrustedRoot[],
  now: Date,
): Promise<ChainVerdict> {
  const refuse = (reason: ChainRefusal, message: string): ChainVerdict => ({ ok: false, reason, message });
  const parsed = parseAll([...cabundle, leaf]);
  if (typeof parsed === "string") return refuse("chain_invalid", parsed);
  const chain = parsed;

  const rootSha256 = sha256(chain[0]!.rawData);
  let trusted: string[];
  try {
    trusted = roots.map(rootFingerprint);
  } catch (e) {
    throw new Error(`a configured trusted root cannot be parsed: ${(e as Error).message}`);
  }
  if (!trusted.includes(rootSha256)) {
    return refuse("untrusted_root", `the chain starts at "${chain[0]!.subject}" (SHA-256 ${rootSha256}), which is not a configured root`);
  }

  for (let i = 1; i < chain.length; i++) {
    const issuer = chain[i - 1]!;
    const cert = chain[i]!;
    if (!sameBytes(cert.issuerName.toArrayBuffer(), issuer.subjectName.toArrayBuffer())) {
      return refuse("chain_invalid", `"${cert.subject}" names "${cert.issuer}" as its issuer, not "${issuer.subject}"`);
    }
    const problem = issuerProblem(issuer, chain.length - 1 - i);
    if (problem) return refuse("chain_invalid", problem);
    let signed = false;
    try {
      signed = await cert.verify({ publicKey: issuer.publicKey, signatureOnly: true }, crypto);
    } catch {
      signed = false;
    }
    if (!signed) return refuse("chain_invalid", `the signature on "${cert.subject}" is not "${issuer.subject}"'s`);
  }

  const signer = chain[chain.length - 1]!;
  if (signer.getExtension(x509.BasicConstraintsExtension)?.ca) return refuse("chain_invalid", "the document's signing certificate is a CA certificate");
  const usage = signer.getExtension(x509.KeyUsagesExtension);
  if (usage && (usage.usages & x509.KeyUsageFlags.digitalSignature) === 0) {
    return refuse("chain_invalid", "the document's signing certificate may not make signatures (key usage)");
  }

  for (const cert of chain) {
    if (now < cert.notBefore) return refuse("certificate_not_yet_valid", `"${cert.subject}" is valid from ${cert.notBefore.toISOString()}, checked at ${now.toISOString()}`);
    if (now > cert.notAfter) return refuse("certificate_expired", `"${cert.subject}" expired at ${cert.notAfter.toISOString()}, checked at ${now.toISOString()}`);
  }
  return { ok: true, rootSha256 };
}
