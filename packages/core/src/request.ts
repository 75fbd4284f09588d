/** Normalises x402 v1 and v2 facilitator bodies into one internal request. Pure: no I/O. */
import { FacilitatorBodyV1, FacilitatorBodyV2, zodMessage } from "./schemas.ts";
import type { NetworkInfo, NetworkRegistry } from "./networks.ts";
import { Reason, type Rejection } from "./reasons.ts";

export type X402Version = 1 | 2;

export interface Requirements {
  scheme: string;
  amount: bigint;
  asset: string;
  payTo: string;
  maxTimeoutSeconds: number;
  extra: Record<string, unknown>;
}

export interface PaymentRequest {
  x402Version: X402Version;
  scheme: string;
  network: NetworkInfo;
  /** The network as the caller spelled it in its requirements; echoed back in answers. */
  networkId: string;
  requirements: Requirements;
  /** The scheme payload (`paymentPayload.payload`), validated by the mechanism that owns the scheme. */
  payload: Record<string, unknown>;
  resource?: string;
  /** `paymentPayload.extensions` (v2): what the client added for extensions (e.g. `eip2612GasSponsoring`). */
  extensions?: Record<string, unknown>;
  /**
   * Who asked: the id of the API key the resource server presented (never the key), when API keys
   * are in use. A payment is bound to its first caller, so another tenant cannot collect its answer.
   */
  caller?: string;
}

/**
 * `status: 400` means the body is not the protocol at all; `status: 200` means a well-formed
 * request that this facilitator rejects (a business failure the official clients can read).
 */
export type ParseResult =
  | { ok: true; request: PaymentRequest }
  | ({ ok: false; status: 400 | 200; x402Version: X402Version } & Rejection);

export function parsePaymentBody(body: unknown, registry: NetworkRegistry): ParseResult {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return fail(400, 1, Reason.invalidPayload, "the body must be a JSON object {x402Version, paymentPayload, paymentRequirements}");
  }
  const b = body as Record<string, unknown>;
  const payloadVersion = (b.paymentPayload as { x402Version?: unknown } | undefined)?.x402Version;
  const version = b.x402Version ?? payloadVersion;
  if (version !== 1 && version !== 2) {
    return fail(400, 1, Reason.invalidVersion, `x402Version must be 1 or 2, got ${describeValue(version)}`);
  }
  if (payloadVersion !== undefined && payloadVersion !== version) {
    return fail(400, version, Reason.invalidVersion, `paymentPayload.x402Version ${describeValue(payloadVersion)} differs from the body's ${version}`);
  }
  const withVersion = { ...b, x402Version: version };
  return version === 1 ? fromV1(withVersion, registry) : fromV2(withVersion, registry);
}

function fromV1(body: unknown, registry: NetworkRegistry): ParseResult {
  const parsed = FacilitatorBodyV1.safeParse(body);
  if (!parsed.success) return fail(400, 1, Reason.invalidPayload, zodMessage(parsed.error));
  const { paymentPayload: p, paymentRequirements: r } = parsed.data;
  const network = registry.resolve(r.network);
  if (!network) return fail(200, 1, Reason.invalidNetwork, `network ${r.network} is not supported by this facilitator`);
  if (p.scheme !== r.scheme) {
    return fail(200, 1, Reason.invalidScheme, `payload scheme ${p.scheme} differs from required scheme ${r.scheme}`);
  }
  if (registry.resolve(p.network) !== network) {
    return fail(200, 1, Reason.invalidNetwork, `payload network ${p.network} differs from required network ${r.network}`);
  }
  return {
    ok: true,
    request: {
      x402Version: 1,
      scheme: r.scheme,
      network,
      networkId: r.network,
      requirements: {
        scheme: r.scheme,
        amount: BigInt(r.maxAmountRequired),
        asset: r.asset,
        payTo: r.payTo,
        maxTimeoutSeconds: r.maxTimeoutSeconds,
        extra: r.extra ?? {},
      },
      payload: p.payload,
      resource: r.resource,
    },
  };
}

/** Fields of `accepted` that must equal the requirements the resource server asks the facilitator to enforce. */
const BINDING_FIELDS = ["scheme", "network", "amount", "asset", "payTo"] as const;

function fromV2(body: unknown, registry: NetworkRegistry): ParseResult {
  const parsed = FacilitatorBodyV2.safeParse(body);
  if (!parsed.success) return fail(400, 2, Reason.invalidPayload, zodMessage(parsed.error));
  const { paymentPayload: p, paymentRequirements: r } = parsed.data;
  const network = registry.resolve(r.network);
  if (!network) return fail(200, 2, Reason.invalidNetwork, `network ${r.network} is not supported by this facilitator`);
  const a = p.accepted;
  if (a.scheme !== r.scheme) {
    return fail(200, 2, Reason.invalidScheme, `accepted scheme ${a.scheme} differs from required scheme ${r.scheme}`);
  }
  if (registry.resolve(a.network) !== network) {
    return fail(200, 2, Reason.invalidNetwork, `accepted network ${a.network} differs from required network ${r.network}`);
  }
  for (const f of BINDING_FIELDS) {
    const same = f === "asset" || f === "payTo" ? sameAddress(a[f], r[f]) : a[f] === r[f];
    // `upto`: `accepted.amount` is the maximum the client signed; a settle's requirements carry the
    // actual charge, which the mechanism holds to at most the signed maximum.
    const uptoCharge = f === "amount" && r.scheme === "upto";
    if (!same && f !== "network" && !uptoCharge) {
      return fail(200, 2, Reason.invalidRequirements, `accepted.${f} (${a[f]}) differs from paymentRequirements.${f} (${r[f]})`);
    }
  }
  return {
    ok: true,
    request: {
      x402Version: 2,
      scheme: r.scheme,
      network,
      networkId: r.network,
      requirements: {
        scheme: r.scheme,
        amount: BigInt(r.amount),
        asset: r.asset,
        payTo: r.payTo,
        maxTimeoutSeconds: r.maxTimeoutSeconds,
        extra: r.extra ?? {},
      },
      payload: p.payload,
      resource: p.resource?.url,
      ...(p.extensions ? { extensions: p.extensions } : {}),
    },
  };
}

function fail(status: 400 | 200, x402Version: X402Version, reason: Rejection["reason"], message: string): ParseResult {
  return { ok: false, status, x402Version, reason, message };
}

/** EVM hex addresses compare without case (checksums); Solana base58 addresses are case-sensitive. */
export function sameAddress(a: string, b: string): boolean {
  return a.startsWith("0x") && b.startsWith("0x") ? a.toLowerCase() === b.toLowerCase() : a === b;
}

/**
 * A short description of a value for a rejection message: never serialises it whole, since a hostile
 * body can nest deeper than JSON.stringify's stack or run to megabytes.
 */
export function describeValue(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === "number" || typeof v === "boolean" || v === null || v === undefined) return String(v);
  return Array.isArray(v) ? "an array" : `a ${typeof v}`;
}
