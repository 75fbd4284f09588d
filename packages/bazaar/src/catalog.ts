/**
 * The catalogue: records what settled payments declared, with quotas and freshness, and answers
 * the discovery queries from a short-lived snapshot of the store (one read of the store serves every
 * query for `snapshotMs`; a write of this process drops the snapshot, so it reads its own writes).
 */
import { normalAddress, type Draft } from "./declaration.ts";
import { byResource, makeCursor, matches, score, searchText, type ListQuery, type SearchQuery, type SearchText } from "./query.ts";
import type { AcceptedRequirements, BazaarResponse, BazaarStore, DiscoveryResource, QuotaGroup, StoredResource } from "./types.ts";

export interface CatalogLimits {
  /** A resource drops out this long after its last settled payment. */
  ttlMs: number;
  /** Fresh resources one payee may have. */
  maxRoutesPerPayTo: number;
  /** Fresh resources one payer may have brought in (by paying for them first). */
  maxRoutesPerPayer: number;
  /** Fresh resources in all. */
  maxResources: number;
}

export interface CatalogOptions extends CatalogLimits {
  /** How long one read of the store serves queries (ms); default 2 s. */
  snapshotMs?: number;
  now?: () => number;
}

/** Ways to pay one resource kept in its `accepts`: the most recently paid ones. */
export const MAX_ACCEPTS = 4;

export interface ListResponse {
  x402Version: 2;
  items: DiscoveryResource[];
  pagination: { limit: number; offset: number; total: number };
}

export interface SearchResponse {
  x402Version: 2;
  resources: DiscoveryResource[];
  partialResults: boolean;
  pagination: { limit: number; cursor: string | null };
}

interface Indexed extends StoredResource {
  text: SearchText;
}

export class Catalog {
  private readonly now: () => number;
  private readonly snapshotMs: number;
  private snapshot?: { at: number; entries: Indexed[] };
  private loading?: Promise<Indexed[]>;
  private generation = 0;

  constructor(
    private readonly store: BazaarStore,
    readonly limits: CatalogOptions,
  ) {
    this.now = limits.now ?? Date.now;
    this.snapshotMs = limits.snapshotMs ?? 2_000;
  }

  /** Catalogues a declaration whose payment by `payer` settled; the answer is the EXTENSION-RESPONSES entry. */
  async record(draft: Draft, payer: string | undefined): Promise<BazaarResponse> {
    const now = this.now();
    const existing = await this.store.get(draft.id, now);
    const record: StoredResource = {
      id: draft.id,
      item: { ...draft.item, accepts: mergeAccepts(existing?.item.accepts ?? [], draft.accept), lastUpdated: new Date(now).toISOString() },
      expiresAt: now + this.limits.ttlMs,
      // Quotas are those of whoever brought the resource in; later payments refresh, they do not move it.
      groups: existing?.groups ?? this.quotaGroups(draft.payTo, payer),
    };
    const put = await this.store.put(record, { now, maxTotal: this.limits.maxResources });
    if (!put.ok) return { status: "rejected", rejectedReason: `${put.reason}: ${this.explain(put.reason)}` };
    this.invalidate();
    return { status: "success" };
  }

  async list(q: ListQuery): Promise<ListResponse> {
    const found = (await this.entries()).filter((e) => matches(e.item, q.filters));
    return {
      x402Version: 2,
      items: found.slice(q.offset, q.offset + q.limit).map((e) => e.item),
      pagination: { limit: q.limit, offset: q.offset, total: found.length },
    };
  }

  async search(q: SearchQuery): Promise<SearchResponse> {
    const ranked = (await this.entries())
      .filter((e) => matches(e.item, q.filters))
      .map((e) => ({ e, s: score(e.text, q.words) }))
      .filter((r) => r.s > 0)
      .sort((a, b) => b.s - a.s || (a.e.item.lastUpdated < b.e.item.lastUpdated ? 1 : a.e.item.lastUpdated > b.e.item.lastUpdated ? -1 : byResource(a.e, b.e)));
    const end = q.offset + q.limit;
    const more = ranked.length > end;
    return {
      x402Version: 2,
      resources: ranked.slice(q.offset, end).map((r) => r.e.item),
      partialResults: more,
      pagination: { limit: q.limit, cursor: more ? makeCursor(end) : null },
    };
  }

  close(): Promise<void> {
    return this.store.close();
  }

  private quotaGroups(payTo: string, payer: string | undefined): QuotaGroup[] {
    const groups: QuotaGroup[] = [{ key: `payto:${payTo}`, max: this.limits.maxRoutesPerPayTo, reason: "payto_route_limit" }];
    if (payer) groups.push({ key: `payer:${normalAddress(payer)}`, max: this.limits.maxRoutesPerPayer, reason: "payer_route_limit" });
    return groups;
  }

  private explain(reason: string): string {
    const l = this.limits;
    const freedIn = `one frees up when a resource goes ${Math.round(l.ttlMs / 1000)} s without a payment`;
    switch (reason) {
      case "payto_route_limit":
        return `this payee already has ${l.maxRoutesPerPayTo} resources in the catalogue; ${freedIn}`;
      case "payer_route_limit":
        return `this payer already brought ${l.maxRoutesPerPayer} resources into the catalogue; ${freedIn}`;
      case "catalog_full":
        return `the catalogue holds its maximum of ${l.maxResources} resources; ${freedIn}`;
      default:
        return "not catalogued";
    }
  }

  /** Fresh entries in list order, from a snapshot at most `snapshotMs` old. */
  private async entries(): Promise<Indexed[]> {
    const now = this.now();
    let entries = this.snapshot && now - this.snapshot.at < this.snapshotMs ? this.snapshot.entries : undefined;
    if (!entries) {
      // One read at a time, shared by every query that arrives meanwhile.
      const loading = (this.loading ??= this.load(now));
      try {
        entries = await loading;
      } finally {
        if (this.loading === loading) this.loading = undefined;
      }
    }
    return entries.filter((e) => e.expiresAt > now);
  }

  private async load(now: number): Promise<Indexed[]> {
    const generation = this.generation;
    const entries = (await this.store.list(now)).map((r) => ({ ...r, text: searchText(r.item) })).sort(byResource);
    // A read that began before a write must not stand as the snapshot after it.
    if (generation === this.generation) this.snapshot = { at: now, entries };
    return entries;
  }

  /** After a write: the next query reads the store again, and does not join a read begun before the write. */
  private invalidate(): void {
    this.generation++;
    this.snapshot = undefined;
    this.loading = undefined;
  }
}

/** `latest` first, then the earlier ways to pay that differ from it, at most MAX_ACCEPTS. */
export function mergeAccepts(earlier: readonly AcceptedRequirements[], latest: AcceptedRequirements): AcceptedRequirements[] {
  const key = (a: AcceptedRequirements) => [a.scheme, a.network, normalAddress(a.asset), normalAddress(a.payTo)].join("|");
  const latestKey = key(latest);
  return [latest, ...earlier.filter((a) => key(a) !== latestKey)].slice(0, MAX_ACCEPTS);
}

/** The EXTENSION-RESPONSES header value: base64 of the JSON object keyed by extension. */
export function encodeExtensionResponses(responses: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify(responses)).toString("base64");
}
