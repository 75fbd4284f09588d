/**
 * Registering a TEE: its attestation document is verified fully before anything is written, then
 * the document goes to Walrus and the entry onto the TEERegistry (through the relayer's key), in
 * this order:
 *
 *   1. the request is well formed (parseRegistration, pure);
 *   2. neither the TEE nor its key is registered yet (registry reads);
 *   3. the TEE type's attestation verifier (verifierFor; AWS Nitro: COSE signature, chain to a
 *      configured root at `now`), the measurement approved on chain for the TEE type, the key (and TLS
 *      certificate) bound, the nonce this registrar issued (redeemed last: a refused document does
 *      not use it up);
 *   4. the registry call is simulated (role, key, measurement: a refusal here writes nothing);
 *   5. the document is stored on Walrus; 6. `register` is sent; 7. `describeTee` (endpoint, payment
 *   address) when given, which the enclave does not attest and the contract keeps apart.
 *
 * Any refusal before step 5 leaves nothing behind. The teeId is keccak256 of the key's registry bytes
 * (the gateway's rule for its DER key; the same rule for a secp256k1 point).
 */
import { BaseError, getAddress, isAddress, keccak256, toHex, type Address, type Hex } from "viem";
import {
  MeasurementStatus,
  NonceBook,
  parseSigningKey,
  keySchemeValue,
  teeIdOf,
  teeTypeOfSlug,
  unsupportedTeeType,
  TeeType,
  verifierFor,
  type NonceStore,
  type SigningKey,
  type TrustedRoot,
} from "@facilitator/tee";
import { WalrusError, type BlobStore } from "./walrus.ts";
import { classifyRegistry, RegistryError, type TeeRegistryClient } from "./tee-registry.ts";

export interface Registration {
  /** The attestation document: base64 text (as `GET /enclave/attestation` answers it) or bytes. */
  document: string | Uint8Array;
  key: SigningKey;
  teeType: TeeType;
  endpoint?: string;
  paymentAddress?: Address;
  /** DER, when the document must bind the enclave's TLS certificate too. */
  tlsCertificate?: Uint8Array;
}

export type RegistrationRefusal = { ok: false; status: number; reason: string; message: string };

export interface Registered {
  ok: true;
  teeId: Hex;
  scheme: SigningKey["scheme"];
  teeType: TeeType;
  measurement: Hex;
  attestationHash: Hex;
  attestationBlobId: string;
  transactionHash: Hex;
  blockNumber: string;
  describeTransactionHash?: Hex;
  /** The endpoint and payment address could not be recorded (the TEE is registered all the same). */
  describeError?: string;
}

const MAX_ENDPOINT = 256;
const refuse = (reason: string, message: string, status = 400): RegistrationRefusal => ({ ok: false, status, reason, message });

/** A registration request body: `{attestationDocument, signingKey, teeType?, endpoint?, paymentAddress?, tlsCertificate?}`. Pure. */
export function parseRegistration(body: unknown): { ok: true; value: Registration } | RegistrationRefusal {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return refuse("invalid_registration", "the body must be a JSON object");
  const b = body as Record<string, unknown>;
  const known = new Set(["attestationDocument", "signingKey", "teeType", "endpoint", "paymentAddress", "tlsCertificate"]);
  const unknown = Object.keys(b).find((k) => !known.has(k));
  if (unknown) return refuse("invalid_registration", `unknown field ${unknown}`);
  if (typeof b.attestationDocument !== "string" || b.attestationDocument === "") return refuse("invalid_registration", "attestationDocument must be the document as base64 text");
  if (typeof b.signingKey !== "string") return refuse("invalid_registration", "signingKey must be the public key (PEM, 0x-hex or base64 DER)");
  const key = parseSigningKey(b.signingKey);
  if (!key.ok) return refuse("invalid_signing_key", key.error);
  const teeType = b.teeType === undefined ? TeeType.AwsNitro : typeof b.teeType === "string" ? teeTypeOfSlug(b.teeType) : undefined;
  if (teeType === undefined) return refuse("unsupported_tee_type", unsupportedTeeType("teeType"));
  if (b.endpoint !== undefined && !(typeof b.endpoint === "string" && b.endpoint.length <= MAX_ENDPOINT && /^https?:$/.test(URL.parse(b.endpoint)?.protocol ?? ""))) {
    return refuse("invalid_registration", `endpoint must be an http(s) URL of at most ${MAX_ENDPOINT} characters`);
  }
  if (b.paymentAddress !== undefined && !(typeof b.paymentAddress === "string" && isAddress(b.paymentAddress, { strict: false }))) {
    return refuse("invalid_registration", "paymentAddress must be an address");
  }
  let tlsCertificate: Uint8Array | undefined;
  if (b.tlsCertificate !== undefined) {
    tlsCertificate = typeof b.tlsCertificate === "string" ? new Uint8Array(Buffer.from(b.tlsCertificate, "base64")) : undefined;
    if (!tlsCertificate?.length) return refuse("invalid_registration", "tlsCertificate must be the DER certificate as base64");
  }
  return {
    ok: true,
    value: {
      document: b.attestationDocument,
      key: { scheme: key.scheme, bytes: key.bytes },
      teeType,
      ...(b.endpoint !== undefined ? { endpoint: b.endpoint as string } : {}),
      ...(b.paymentAddress !== undefined ? { paymentAddress: getAddress(b.paymentAddress as string) } : {}),
      ...(tlsCertificate ? { tlsCertificate } : {}),
    },
  };
}

export interface TeeRegistrarOptions {
  registry: TeeRegistryClient;
  blobs: BlobStore;
  /** The roots a document's chain may end at: the AWS Nitro root in production. */
  roots: readonly TrustedRoot[];
  /** Where this registrar's nonces (10 minutes each) are kept: default, this process's memory. */
  nonceStore?: NonceStore;
  now?: () => Date;
  /** Told after a registration (the door's cache forgets the TEE, so it is known at once). */
  onRegistered?: (teeId: Hex) => void;
}

const ZERO_ADDRESS = "0x0000000000000000000000000000000000000000";

/** A nonce store that cannot be reached: an outage (503), not a refusal. */
const stateUnavailable = (): never => {
  throw new RegistryError("tee_state_unavailable", "the shared TEE state (Redis or LMDB) holding the registrar's nonces cannot be reached", true);
};

export class TeeRegistrar {
  private readonly nonces: NonceBook;
  private readonly now: () => Date;

  constructor(private readonly o: TeeRegistrarOptions) {
    if (o.roots.length === 0) throw new Error("a registrar needs at least one trusted attestation root");
    this.nonces = new NonceBook({ ttlMs: 10 * 60_000, store: o.nonceStore });
    this.now = o.now ?? (() => new Date());
  }

  /** A fresh nonce for the enclave to put in its document (`GET /enclave/attestation?nonce=<40 hex digits>`). */
  issueNonce(): Promise<{ nonce: Hex; expiresAt: Date }> {
    return this.nonces.issue(this.now()).catch(stateUnavailable);
  }

  async register(r: Registration): Promise<Registered | RegistrationRefusal> {
    const { registry } = this.o;
    const keyHex = toHex(r.key.bytes);
    const teeId = teeIdOf(r.key.bytes);
    try {
      if (await registry.getTee(teeId)) return refuse("tee_already_registered", `TEE ${teeId} is registered already`, 409);
      const holder = await registry.teeIdOfKey(keccak256(r.key.bytes));
      if (holder) return refuse("tee_key_already_registered", `this signing key is registered already, under TEE ${holder}`, 409);

      const verifier = verifierFor(r.teeType);
      if (!verifier) return refuse("unsupported_tee_type", `TEE type ${r.teeType} has no attestation verifier here`);
      const verdict = await verifier.verify(r.document, {
        roots: this.o.roots,
        approvedMeasurements: async (m) => (await registry.measurementStatus(r.teeType, m.hash)).status === MeasurementStatus.Approved,
        nonce: { redeem: (nonce, now) => this.nonces.redeem(nonce, now).catch(stateUnavailable) },
        expectedKey: r.key.bytes,
        expectedTlsCertificate: r.tlsCertificate,
        now: this.now(),
      });
      if (!verdict.ok) return refuse(verdict.reason, verdict.message);
      const { measurement, documentHash, document } = verdict.attestation;

      const args = (blobId: string) => [teeId, r.teeType, keySchemeValue(r.key.scheme), keyHex, measurement.hash, toHex(blobId), documentHash] as const;
      await registry.simulate({ functionName: "register", args: args("not-stored-yet") });
      const { blobId } = await this.o.blobs.store(document).catch((e: unknown) => {
        const status = e instanceof WalrusError && e.status ? ` (HTTP ${e.status})` : "";
        throw new RegistryError("walrus_unavailable", `storing the attestation document on Walrus failed${status}; nothing was registered`, true);
      });
      const registered = await registry.write({ functionName: "register", args: args(blobId) });
      this.o.onRegistered?.(teeId);
      const described = r.endpoint !== undefined || r.paymentAddress !== undefined ? await this.describe(teeId, r) : {};
      return {
        ok: true,
        teeId,
        scheme: r.key.scheme,
        teeType: r.teeType,
        measurement: measurement.hash,
        attestationHash: documentHash,
        attestationBlobId: blobId,
        transactionHash: registered.transactionHash,
        blockNumber: registered.blockNumber.toString(),
        ...described,
      };
    } catch (e) {
      if (!(e instanceof RegistryError || e instanceof BaseError)) throw e;
      const err = classifyRegistry(e, "registering");
      return refuse(err.reason, err.message, err.transient ? 503 : 409);
    }
  }

  /** The registration stands whatever happens here: a failure is reported beside it, to be retried. */
  private async describe(teeId: Hex, r: Registration): Promise<{ describeTransactionHash?: Hex; describeError?: string }> {
    try {
      const { transactionHash } = await this.o.registry.write({ functionName: "describeTee", args: [teeId, r.endpoint ?? "", r.paymentAddress ?? ZERO_ADDRESS] });
      return { describeTransactionHash: transactionHash };
    } catch (e) {
      return { describeError: classifyRegistry(e, "describeTee").message };
    }
  }
}
