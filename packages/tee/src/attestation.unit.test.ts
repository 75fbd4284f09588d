import { decode, encode } from "cborg";
import { beforeAll, describe, expect, it } from "vitest";
import { keccak256, toHex, type Hex } from "viem";
import { CBOR_DECODE } from "./cose.ts";
import {
  AWS_NITRO_ROOT_PEM,
  encodeBase64,
  generateGatewayKey,
  measurementOf,
  NONCE_NOT_CHECKED,
  NonceBook,
  nitridingUserData,
  TestAuthority,
  testPcrs,
  verifyNitroAttestation,
  type AttestOptions,
  type GatewayKey,
  type NitroRefusalReason,
  type NitroVerifyOptions,
} from "./index.ts";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const T0 = new Date(Math.floor(Date.now() / 1000) * 1000);
const at = (ms: number) => new Date(T0.getTime() + ms);
const APPROVED = measurementOf(...(Object.values(testPcrs("approved-image")) as [Hex, Hex, Hex]));

let authority: TestAuthority;
let stranger: TestAuthority; // another local PKI
let twin: TestAuthority; // same names as `authority`, other keys
let key: GatewayKey;
let otherKey: GatewayKey;

beforeAll(async () => {
  [authority, stranger, twin] = await Promise.all([TestAuthority.create(), TestAuthority.create({ name: "stranger" }), TestAuthority.create()]);
  key = generateGatewayKey();
  otherKey = generateGatewayKey();
});

/** A nonce book whose nonces live 10 minutes, and one nonce issued from it at T0. */
async function freshNonce() {
  const book = new NonceBook({ ttlMs: 10 * MINUTE });
  return { book, nonce: (await book.issue(T0)).nonce };
}

function attest(nonce: Hex | undefined, opts: Partial<AttestOptions> = {}) {
  return authority.attest({ signingKey: key.publicKey, nonce, pcrs: testPcrs("approved-image"), timestamp: T0, ...opts });
}

function options(book: NonceBook, opts: Partial<NitroVerifyOptions> = {}): NitroVerifyOptions {
  return { roots: [authority.rootPem], approvedMeasurements: new Set([APPROVED.hash]), nonce: book, expectedKey: key.publicKey, now: at(MINUTE), ...opts };
}

/** The COSE_Sign1 array of a document, edited and encoded again (its signature left as it was). */
function reencode(doc: Uint8Array, edit: (parts: unknown[]) => void): Uint8Array {
  const parts = decode(doc, CBOR_DECODE) as unknown[];
  edit(parts);
  return encode(parts);
}

function withPayload(doc: Uint8Array, edit: (payload: Map<string, unknown>) => void): Uint8Array {
  return reencode(doc, (parts) => {
    const payload = decode(parts[2] as Uint8Array, CBOR_DECODE) as Map<string, unknown>;
    edit(payload);
    parts[2] = encode(payload);
  });
}

describe("verifyNitroAttestation accepts", () => {
  it("a document of an approved image, chained to the configured root, binding the key, with a fresh nonce", async () => {
    const { book, nonce } = await freshNonce();
    const doc = await attest(nonce);
    const verdict = await verifyNitroAttestation(doc, options(book));
    expect(verdict).toMatchObject({ ok: true });
    if (!verdict.ok) return;
    const a = verdict.attestation;
    expect(a.measurement).toEqual(APPROVED);
    expect(a.timestamp).toEqual(T0);
    expect(a.nonce).toBe(nonce);
    expect(a.rootSha256).toBe(authority.rootSha256);
    expect(a.documentHash).toBe(keccak256(doc));
    expect(a.pcrs.get(0)).toBe(APPROVED.pcr0);
    expect(a.tlsCertificateHash).toBe(toHex(new Uint8Array(32)));
  });

  it("the same document as base64 text, as the gateway serves it, and a measurement approved by lookup", async () => {
    const { book, nonce } = await freshNonce();
    const text = `${encodeBase64(await attest(nonce))}\n`;
    const verdict = await verifyNitroAttestation(text, options(book, { approvedMeasurements: (m) => m.pcr2 === APPROVED.pcr2 }));
    expect(verdict.ok).toBe(true);
  });

  it("an archived document long after its certificates expired, checked at its registration time without a nonce", async () => {
    const doc = await attest(undefined);
    const later = await verifyNitroAttestation(doc, options(new NonceBook({ ttlMs: 1 }), { nonce: NONCE_NOT_CHECKED, now: at(30 * 24 * HOUR) }));
    expect(later).toMatchObject({ ok: false, reason: "attestation_certificate_expired" });
    expect(await verifyNitroAttestation(doc, options(new NonceBook({ ttlMs: 1 }), { nonce: NONCE_NOT_CHECKED, now: at(MINUTE) }))).toMatchObject({ ok: true });
  });
});

interface Row {
  name: string;
  /** Builds the document; `nonce` was issued by `book`. */
  doc: (nonce: Hex) => Promise<Uint8Array | string>;
  opts?: (book: NonceBook) => Partial<NitroVerifyOptions>;
  /** Runs before the verification under test (e.g. a first, accepted use of the nonce). */
  before?: (ctx: { doc: Uint8Array | string; book: NonceBook; nonce: Hex }) => Promise<void>;
  reason: NitroRefusalReason;
}

const ROWS: Row[] = [
  { name: "a root that is not configured (another local PKI)", doc: (n) => stranger.attest({ signingKey: key.publicKey, nonce: n, pcrs: testPcrs("approved-image"), timestamp: T0 }), reason: "attestation_untrusted_root" },
  { name: "a test document where only the AWS Nitro root is trusted", doc: (n) => attest(n), opts: () => ({ roots: [AWS_NITRO_ROOT_PEM] }), reason: "attestation_untrusted_root" },
  { name: "an expired signing certificate (clock 4 h after the document)", doc: (n) => attest(n), opts: () => ({ now: at(4 * HOUR) }), reason: "attestation_certificate_expired" },
  { name: "a signing certificate not yet valid (clock 1 h before the document)", doc: (n) => attest(n), opts: () => ({ now: at(-HOUR) }), reason: "attestation_certificate_not_yet_valid" },
  {
    name: "a signing certificate whose window ended before the clock, document otherwise fresh",
    doc: (n) => attest(n, { leafValidity: { notBefore: at(-2 * HOUR), notAfter: at(-MINUTE) } }),
    reason: "attestation_certificate_expired",
  },
  {
    name: "a tampered payload (PCR0 changed after signing)",
    doc: async (n) => withPayload(await attest(n), (p) => (p.get("pcrs") as Map<number, Uint8Array>).set(0, new Uint8Array(48).fill(7))),
    reason: "attestation_signature_invalid",
  },
  {
    name: "a tampered payload (user_data rebound to another key after signing)",
    doc: async (n) => withPayload(await attest(n), (p) => p.set("user_data", nitridingUserData(otherKey.publicKey))),
    reason: "attestation_signature_invalid",
  },
  {
    name: "a tampered signature (one bit flipped)",
    doc: async (n) => reencode(await attest(n), (parts) => ((parts[3] as Uint8Array)[10]! ^= 1)),
    reason: "attestation_signature_invalid",
  },
  {
    name: "a protected header naming another algorithm (ES256)",
    doc: async (n) => reencode(await attest(n), (parts) => (parts[0] = encode(new Map([[1, -7]])))),
    reason: "attestation_malformed",
  },
  { name: "bytes that are not CBOR", doc: async () => new Uint8Array([0xff, 0x00, 0x01]), reason: "attestation_malformed" },
  { name: "text that is not base64", doc: async () => "not*base64!", reason: "attestation_malformed" },
  { name: "digest SHA256 instead of SHA384", doc: (n) => attest(n, { editPayload: (p) => p.set("digest", "SHA256") }), reason: "attestation_malformed" },
  { name: "PCR1 missing", doc: (n) => attest(n, { editPayload: (p) => (p.get("pcrs") as Map<number, unknown>).delete(1) }), reason: "attestation_malformed" },
  { name: "an empty cabundle", doc: (n) => attest(n, { editPayload: (p) => p.set("cabundle", []) }), reason: "attestation_malformed" },
  {
    name: "a cabundle without the intermediate that issued the signing certificate",
    doc: (n) => attest(n, { editPayload: (p) => p.set("cabundle", [authority.rootDer]) }),
    reason: "attestation_chain_invalid",
  },
  {
    name: "an intermediate of the same name not signed by the root",
    doc: (n) => attest(n, { editPayload: (p) => p.set("cabundle", [authority.rootDer, twin.intermediateDer]) }),
    reason: "attestation_chain_invalid",
  },
  { name: "a measurement that is not approved", doc: (n) => attest(n, { pcrs: testPcrs("unknown-image") }), reason: "attestation_measurement_not_approved" },
  { name: "no measurement approved at all", doc: (n) => attest(n), opts: () => ({ approvedMeasurements: new Set() }), reason: "attestation_measurement_not_approved" },
  { name: "a document binding another key", doc: (n) => attest(n, { signingKey: otherKey.publicKey }), reason: "attestation_key_not_bound" },
  { name: "user_data that is not nitriding's layout (a bare key hash)", doc: (n) => attest(n, { userData: new Uint8Array(32) }), reason: "attestation_key_not_bound" },
  {
    name: "a document binding another TLS certificate than the one expected",
    doc: (n) => attest(n, { tlsCertificate: new Uint8Array([1, 2, 3]) }),
    opts: () => ({ expectedTlsCertificate: new Uint8Array([4, 5, 6]) }),
    reason: "attestation_tls_certificate_not_bound",
  },
  { name: "no nonce", doc: () => attest(undefined), reason: "attestation_nonce_missing" },
  { name: "a nonce this registrar never issued", doc: () => attest(`0x${"ab".repeat(20)}`), reason: "attestation_nonce_unknown" },
  { name: "a stale nonce (clock past its 10 minutes)", doc: (n) => attest(n), opts: () => ({ now: at(11 * MINUTE) }), reason: "attestation_nonce_expired" },
  {
    name: "a reused nonce (the same document accepted once already)",
    doc: (n) => attest(n),
    before: async ({ doc, book }) => void expect(await verifyNitroAttestation(doc, options(book))).toMatchObject({ ok: true }),
    reason: "attestation_nonce_reused",
  },
  {
    name: "a reused nonce (a second document made with it)",
    doc: (n) => attest(n),
    before: async ({ book, nonce }) => void expect(await verifyNitroAttestation(await attest(nonce), options(book))).toMatchObject({ ok: true }),
    reason: "attestation_nonce_reused",
  },
];

describe("verifyNitroAttestation refuses, before anything is written", () => {
  it.each(ROWS)("$name: $reason", async (row) => {
    const { book, nonce } = await freshNonce();
    const doc = await row.doc(nonce);
    await row.before?.({ doc, book, nonce });
    const verdict = await verifyNitroAttestation(doc, options(book, row.opts?.(book)));
    expect(verdict).toMatchObject({ ok: false, reason: row.reason });
    if (!verdict.ok) expect(verdict.message.length).toBeGreaterThan(10);
  });

  it("a refused document does not use up its nonce", async () => {
    const { book, nonce } = await freshNonce();
    expect(await verifyNitroAttestation(await attest(nonce, { pcrs: testPcrs("unknown-image") }), options(book))).toMatchObject({ ok: false });
    expect(await verifyNitroAttestation(await attest(nonce), options(book))).toMatchObject({ ok: true });
  });

  it("of two documents verified at once with one nonce, exactly one is accepted", async () => {
    const { book, nonce } = await freshNonce();
    const docs = await Promise.all([attest(nonce), attest(nonce)]);
    const verdicts = await Promise.all(docs.map((d) => verifyNitroAttestation(d, options(book))));
    expect(verdicts.map((v) => v.ok).sort()).toEqual([false, true]);
  });
});
