/**
 * The catalogue's data: what the discovery endpoints serve (the shapes `@x402/extensions` 2.27's
 * `withBazaar` client parses) and what a store keeps of each resource.
 */

/** One way to pay for a resource: the v2 requirements a payer accepted and settled. */
export interface AcceptedRequirements {
  scheme: string;
  network: string;
  amount: string;
  asset: string;
  payTo: string;
  maxTimeoutSeconds: number;
  extra?: Record<string, unknown>;
}

/** The bazaar extension as catalogued: only the fields the spec defines, validated. */
export interface CatalogedExtension {
  info: { input: Record<string, unknown>; output?: Record<string, unknown> };
  schema: Record<string, unknown>;
  routeTemplate?: string;
}

/** A catalogue item as served: `DiscoveryResource` of the spec and the official client. */
export interface DiscoveryResource {
  resource: string;
  type: "http" | "mcp";
  x402Version: 2;
  accepts: AcceptedRequirements[];
  /** ISO 8601: when a payment for it last settled. */
  lastUpdated: string;
  description?: string;
  mimeType?: string;
  serviceName?: string;
  tags?: string[];
  iconUrl?: string;
  extensions: { bazaar: CatalogedExtension };
}

/**
 * A quota a resource counts against while it is fresh (its payee's, the payer who first declared it).
 * Fixed when the resource enters the catalogue: later payments refresh it, they do not move it.
 */
export interface QuotaGroup {
  /** e.g. `payto:0xabc…`; a store may use it in key names (bounded, no spaces). */
  key: string;
  max: number;
  /** The refusal when the group is full, e.g. `payto_route_limit`. */
  reason: string;
}

/** What a store keeps per resource. */
export interface StoredResource {
  /** Hash of what identifies the resource: type, canonical URL, method or tool, payee. */
  id: string;
  item: DiscoveryResource;
  /** ms since the epoch; the resource is gone from the catalogue from then on. */
  expiresAt: number;
  groups: QuotaGroup[];
}

export type PutResult = { ok: true; created: boolean } | { ok: false; reason: string };

/**
 * Where the catalogue lives (LMDB embedded, Redis shared: `@facilitator/ledger`). Expired resources
 * are never returned, whether or not they were removed yet.
 */
export interface BazaarStore {
  get(id: string, now: number): Promise<StoredResource | undefined>;
  /**
   * Writes `record` atomically with the quota checks: a resource not fresh in the store is refused
   * with the first full group's `reason`, or `catalog_full` past `maxTotal` fresh resources; a fresh
   * one is replaced whatever the counts (a refresh adds nothing).
   */
  put(record: StoredResource, opts: { now: number; maxTotal: number }): Promise<PutResult>;
  /** Every fresh resource, in no particular order. */
  list(now: number): Promise<StoredResource[]>;
  close(): Promise<void>;
}

/** The `bazaar` entry of the EXTENSION-RESPONSES header. */
export type BazaarResponse = { status: "success" | "processing" } | { status: "rejected"; rejectedReason: string };
