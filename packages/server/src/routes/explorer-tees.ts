/**
 * The explorer's view of a TEE: what the TEERegistry holds for it and whether its attestation document
 * (fetched from Walrus by the registry's blob id) verifies, decided on this server with the auditor's
 * own code (`teeEvidence`: the document's hash against the registry's, then the TEE type's verifier
 * against the roots this facilitator trusts). The page re-reads the registry itself through the RPC
 * the reader chose and hashes the document in the browser; the document's signature chain and PCRs are
 * this server's word, which the auditor checks without us.
 *
 *   GET /explorer/api/tees/:teeId   200 TeeView; 400 not a teeId; 502 the chain or Walrus cannot be read
 *
 * Answers are cached per TEE for `cacheMs` (a revocation shows at most that late; the page's own
 * registry read does not wait), at most `capacity` of them, so anonymous callers cost one registry
 * read and one document fetch per TEE per period.
 */
import type { Address, Hex } from "viem";
import { blobCache, teeEvidence, type ChainReader } from "@facilitator/auditor";
import { keySchemeName, MAX_DOCUMENT_BYTES, rootFingerprint, teeTypeName, verifierFor, type TrustedRoot } from "@facilitator/tee";

export interface ExplorerTeeRegistry {
  address: Address;
  /** The roots attestation documents must chain to: this facilitator's TEE_ATTESTATION_ROOTS. */
  roots: readonly TrustedRoot[];
}

/** What the page shows of a TEE. Block numbers and times as decimal strings. */
export type TeeView =
  | { teeId: Hex; registry: Address; registered: false }
  | {
      teeId: Hex;
      registry: Address;
      registered: true;
      teeType: number;
      teeTypeName: string;
      measurementRule?: string;
      scheme: string;
      signingKey: Hex;
      measurement: Hex;
      measurementStatus: "approved" | "revoked" | "not approved";
      measurementApprovedBlock: string;
      measurementRevokedBlock: string;
      registeredBlock: string;
      registeredAt: string;
      revokedBlock: string;
      attestationBlobId: string;
      attestationHash: Hex;
      /** This server's verdict on the document, against `rootsSha256`. */
      attestation: { verified: true; rootSha256: string; registers: Readonly<Record<string, Hex>> } | { verified: false; detail: string };
      /** The document (base64), so the page hashes it itself; absent when it could not be fetched. */
      document?: string;
    };

const STATUS = ["not approved", "approved", "revoked"] as const;

/** The view of one TEE from its evidence. Pure. */
export function teeView(teeId: Hex, registry: Address, ev: Awaited<ReturnType<typeof teeEvidence>>, document: Uint8Array | undefined, scrub: (s: string) => string): TeeView {
  const { entry, measurement: m, attestation } = ev;
  if (!entry || !m || !attestation) return { teeId, registry, registered: false };
  return {
    teeId,
    registry,
    registered: true,
    teeType: entry.teeType,
    teeTypeName: teeTypeName(entry.teeType),
    measurementRule: verifierFor(entry.teeType)?.measurementRule,
    scheme: keySchemeName(entry.scheme) ?? `scheme ${entry.scheme}`,
    signingKey: entry.signingKey,
    measurement: entry.measurement,
    measurementStatus: STATUS[m.status] ?? "not approved",
    measurementApprovedBlock: m.approvedBlock.toString(),
    measurementRevokedBlock: m.revokedBlock.toString(),
    registeredBlock: entry.registeredBlock.toString(),
    registeredAt: entry.registeredAt.toString(),
    revokedBlock: entry.revokedBlock.toString(),
    attestationBlobId: entry.attestationBlobId,
    attestationHash: entry.attestationHash,
    // A fetch failure names the aggregator: callers are anonymous, so the detail is scrubbed.
    attestation: attestation.ok ? { verified: true, rootSha256: attestation.rootSha256, registers: attestation.registers } : { verified: false, detail: scrub(attestation.detail) },
    ...(document ? { document: Buffer.from(document).toString("base64") } : {}),
  };
}

export interface TeeViewsOptions {
  chain: () => Promise<ChainReader>;
  registry: ExplorerTeeRegistry;
  aggregatorUrl: string;
  scrub: (s: string) => string;
  cacheMs: number;
  capacity: number;
}

/** Views of TEEs, cached per TEE, one read at a time per TEE. */
export class TeeViews {
  private readonly cache = new Map<string, { view: Promise<TeeView>; at: number }>();
  /** SHA-256 fingerprints of the trusted roots, for the page (compare with the AWS Nitro root's). */
  readonly rootsSha256: string[];

  constructor(private readonly o: TeeViewsOptions) {
    this.rootsSha256 = o.registry.roots.map(rootFingerprint);
  }

  get(teeId: Hex): Promise<TeeView> {
    const id = teeId.toLowerCase() as Hex;
    const hit = this.cache.get(id);
    if (hit && Date.now() - hit.at < this.o.cacheMs) return hit.view;
    const view = this.read(id);
    this.cache.delete(id);
    while (this.cache.size >= this.o.capacity) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(id, { view, at: Date.now() });
    view.catch(() => this.cache.get(id)?.view === view && this.cache.delete(id)); // a failure is not kept
    return view;
  }

  private async read(teeId: Hex): Promise<TeeView> {
    const getBlob = blobCache(this.o.aggregatorUrl);
    const ev = await teeEvidence(await this.o.chain(), this.o.registry.address, this.o.registry.roots, getBlob, teeId);
    const blob = ev.entry ? await getBlob(ev.entry.attestationBlobId) : undefined;
    // No real document is larger (the verifier refuses one that is): the page is not handed more.
    const document = blob?.ok && blob.bytes.length <= MAX_DOCUMENT_BYTES ? blob.bytes : undefined;
    return teeView(teeId, this.o.registry.address, ev, document, this.o.scrub);
  }
}

/** A teeId as the route takes it: 0x and 64 hex digits, not zero. */
export const isTeeId = (s: string): s is Hex => /^0x[0-9a-fA-F]{64}$/.test(s) && !/^0x0{64}$/.test(s);
