/** The facilitator without HTTP: picks the mechanism for a request and maps its outcome to the caller's version. */
import {
  parsePaymentBody,
  Reason,
  restoredRequest,
  toSettleResponse,
  toVerifyResponse,
  type NetworkRegistry,
  type LedgerEntry,
  type NetworkInfo,
  type PaymentMechanism,
  type PaymentRequest,
  type SettleOutcome,
  type VerifyOutcome,
  type SettleResponse,
  type VerifyResponse,
  type X402Version,
} from "@facilitator/core";

export interface SupportedKind {
  x402Version: X402Version;
  scheme: string;
  network: string;
  extra?: Record<string, unknown>;
}

export interface SupportedResponse {
  kinds: SupportedKind[];
  extensions: string[];
  signers: Record<string, string[]>;
}

/** An answer with the HTTP status it goes out with. */
export interface Answer<T> {
  status: 200 | 400;
  body: T;
  /** Set when the body was a well-formed payment request. */
  request?: PaymentRequest;
}

/** Called with what went wrong inside a mechanism; the caller only sees a generic message (RPC URLs can hold keys). */
export type UnexpectedErrorSink = (error: unknown, request: PaymentRequest, action: "verify" | "settle") => void;

export interface FacilitatorOptions {
  /** Told what went wrong inside a mechanism. */
  onUnexpected?: UnexpectedErrorSink;
  /**
   * Applied to every message an answer carries: a node's or resolver's error text can quote an RPC
   * host, or a path holding an API key, and answers go to whoever calls.
   */
  scrubMessage?: (text: string) => string;
  /** Extension keys /supported lists besides the mechanisms' own (e.g. `bazaar` when the catalogue is on). */
  extensions?: readonly string[];
}

export class Facilitator {
  private readonly onUnexpected: UnexpectedErrorSink;
  private readonly scrub: (text: string) => string;
  private readonly extensions: readonly string[];

  constructor(
    readonly registry: NetworkRegistry,
    readonly mechanisms: readonly PaymentMechanism[],
    opts: FacilitatorOptions = {},
  ) {
    this.onUnexpected = opts.onUnexpected ?? (() => {});
    this.scrub = opts.scrubMessage ?? ((text) => text);
    this.extensions = opts.extensions ?? [];
  }

  supported(): SupportedResponse {
    const kinds: SupportedKind[] = [];
    const signers: Record<string, string[]> = {};
    const extensions = new Set<string>();
    for (const m of this.mechanisms) {
      for (const n of m.networks) {
        const extra = m.supportedExtra(n);
        for (const [x402Version, network] of [[1, n.name], [2, n.caip2]] as const) {
          kinds.push({ x402Version, scheme: m.scheme, network, ...(extra ? { extra } : {}) });
        }
      }
      for (const e of m.extensions ?? []) extensions.add(e);
      const family = m.family === "evm" ? "eip155:*" : "solana:*";
      signers[family] = [...new Set([...(signers[family] ?? []), ...m.signers()])];
    }
    for (const e of this.extensions) extensions.add(e);
    return { kinds, extensions: [...extensions], signers };
  }

  /** `caller`: the id of the API key the resource server presented, if any (a payment is bound to its first caller). */
  async verify(body: unknown, caller?: string): Promise<Answer<VerifyResponse>> {
    const found = this.route(body, caller);
    if (!found.ok) return { status: found.status, body: toVerifyResponse({ isValid: false, reason: found.reason, message: found.message }, found.x402Version) };
    const { request, mechanism } = found;
    try {
      return { status: 200, body: toVerifyResponse(this.scrubbed(await mechanism.verify(request)), request.x402Version), request };
    } catch (e) {
      this.onUnexpected(e, request, "verify");
      const message = "the facilitator could not complete verification; nothing was broadcast";
      return { status: 200, body: toVerifyResponse({ isValid: false, reason: Reason.unexpectedVerify, message }, request.x402Version), request };
    }
  }

  async settle(body: unknown, caller?: string): Promise<Answer<SettleResponse>> {
    const found = this.route(body, caller);
    if (!found.ok) {
      const network = requestedNetwork(body);
      return { status: found.status, body: toSettleResponse({ success: false, reason: found.reason, message: found.message, transaction: "" }, found.x402Version, network) };
    }
    const { request, mechanism } = found;
    try {
      return { status: 200, body: toSettleResponse(this.scrubbed(await mechanism.settle(request)), request.x402Version, request.networkId), request };
    } catch (e) {
      this.onUnexpected(e, request, "settle");
      const message = "the facilitator could not complete settlement; retry the same payment to learn its outcome";
      return {
        status: 200,
        body: toSettleResponse({ success: false, reason: Reason.unexpectedSettle, message, transaction: "" }, request.x402Version, request.networkId),
        request,
      };
    }
  }

  /**
   * Collects the outcome of a recorded broadcast nobody came back for (see ops/collector.ts): waits
   * for its recorded transaction and records what happened, never signing anything new. Undefined
   * when there is nothing this facilitator can collect: no request kept (an older entry), a network
   * or scheme it no longer serves, or an entry that moved on since `entry` was read.
   */
  async collect(entry: LedgerEntry): Promise<SettleOutcome | undefined> {
    const stored = entry.request;
    const network = stored && this.registry.resolve(stored.networkId);
    const mechanism = network && this.mechanismFor(network, stored.scheme);
    if (!stored || !network || network.caip2 !== entry.network || !mechanism) return undefined;
    let request: PaymentRequest;
    try {
      request = restoredRequest(stored, network);
    } catch {
      return undefined; // not a request this version can read
    }
    try {
      return await mechanism.collect(request, entry.version);
    } catch (e) {
      this.onUnexpected(e, request, "settle");
      return undefined;
    }
  }

  private mechanismFor(network: NetworkInfo, scheme: string): PaymentMechanism | undefined {
    return this.mechanisms.find((m) => m.networks.includes(network) && m.scheme === scheme);
  }

  private scrubbed<T extends VerifyOutcome | SettleOutcome>(outcome: T): T {
    return "message" in outcome ? { ...outcome, message: this.scrub(outcome.message) } : outcome;
  }

  private route(body: unknown, caller: string | undefined) {
    const parsed = parsePaymentBody(body, this.registry);
    if (!parsed.ok) return parsed;
    const request: PaymentRequest = caller ? { ...parsed.request, caller } : parsed.request;
    const mechanism = this.mechanismFor(request.network, request.scheme);
    if (mechanism) return { ok: true as const, request, mechanism };
    const servesNetwork = this.mechanisms.some((m) => m.networks.includes(request.network));
    return servesNetwork
      ? { ok: false as const, status: 200 as const, x402Version: request.x402Version, reason: Reason.unsupportedScheme, message: `scheme ${request.scheme} is not supported on ${request.networkId}` }
      : { ok: false as const, status: 200 as const, x402Version: request.x402Version, reason: Reason.invalidNetwork, message: `network ${request.networkId} is not enabled on this facilitator` };
  }
}

/** The network a body's requirements name, as sent (for answers to bodies that are not the protocol). */
export function requestedNetwork(body: unknown): string {
  const n = (body as { paymentRequirements?: { network?: unknown } } | null)?.paymentRequirements?.network;
  return typeof n === "string" ? n : "";
}
