/**
 * The discovery endpoints' queries, as pure functions over a list of items: the official filters
 * (type, payTo, scheme, network, extensions), offset paging for `/discovery/resources`, and a
 * keyword search with an opaque cursor for `/discovery/search`.
 */
import { normalAddress } from "./declaration.ts";
import type { DiscoveryResource } from "./types.ts";

export const LIST_LIMITS = { defaultLimit: 100, maxLimit: 500 } as const;
export const SEARCH_LIMITS = { defaultLimit: 20, maxLimit: 100, queryLength: 256, words: 16 } as const;
/** Longest accepted filter value (an address, a CAIP-2 id, a scheme name). */
const MAX_FILTER_LENGTH = 256;

export interface Filters {
  type?: string;
  payTo?: string;
  scheme?: string;
  network?: string;
  /** Extension keys every item must carry (comma-separated in the query). */
  extensions?: string[];
}

export interface ListQuery {
  filters: Filters;
  limit: number;
  offset: number;
}

export interface SearchQuery {
  filters: Filters;
  words: string[];
  limit: number;
  offset: number;
}

export type Parsed<T> = { ok: true; query: T } | { ok: false; message: string };

/** Query-string values as express gives them: a string, a repeated parameter's list, or nothing. */
export type RawQuery = Record<string, unknown>;

export function parseListQuery(raw: RawQuery): Parsed<ListQuery> {
  const filters = parseFilters(raw);
  if (!filters.ok) return filters;
  const limit = integer(raw, "limit", LIST_LIMITS.defaultLimit, 1);
  const offset = integer(raw, "offset", 0, 0);
  if (typeof limit === "string") return { ok: false, message: limit };
  if (typeof offset === "string") return { ok: false, message: offset };
  return { ok: true, query: { filters: filters.query, limit: Math.min(limit, LIST_LIMITS.maxLimit), offset } };
}

export function parseSearchQuery(raw: RawQuery): Parsed<SearchQuery> {
  const text = single(raw, "query");
  if (typeof text !== "string" || !text.trim()) return { ok: false, message: "query is required: the words to look for" };
  if (text.length > SEARCH_LIMITS.queryLength) return { ok: false, message: `query is longer than ${SEARCH_LIMITS.queryLength} characters` };
  const filters = parseFilters(raw);
  if (!filters.ok) return filters;
  const limit = integer(raw, "limit", SEARCH_LIMITS.defaultLimit, 1);
  if (typeof limit === "string") return { ok: false, message: limit };
  const cursor = single(raw, "cursor");
  const offset = cursor === undefined || cursor === "" ? 0 : typeof cursor === "string" ? readCursor(cursor) : undefined;
  if (offset === undefined) return { ok: false, message: "cursor is not one this facilitator gave out" };
  return { ok: true, query: { filters: filters.query, words: words(text), limit: Math.min(limit, SEARCH_LIMITS.maxLimit), offset } };
}

function parseFilters(raw: RawQuery): Parsed<Filters> {
  const filters: Filters = {};
  for (const name of ["type", "payTo", "scheme", "network", "extensions"] as const) {
    const value = single(raw, name);
    if (value === undefined || value === "") continue;
    if (typeof value !== "string") return { ok: false, message: `${name} must be given once` };
    if (value.length > MAX_FILTER_LENGTH) return { ok: false, message: `${name} is longer than ${MAX_FILTER_LENGTH} characters` };
    if (name === "extensions") filters.extensions = value.split(",").map((s) => s.trim()).filter(Boolean);
    else filters[name] = name === "payTo" ? normalAddress(value) : value;
  }
  return { ok: true, query: filters };
}

/** A parameter's one value; a list when it was repeated (refused by the callers), undefined when absent. */
function single(raw: RawQuery, name: string): string | unknown[] | undefined {
  const v = raw[name];
  if (v === undefined) return undefined;
  if (Array.isArray(v)) return v.length === 1 && typeof v[0] === "string" ? v[0] : v;
  return typeof v === "string" ? v : [v];
}

/** The integer, or a message saying why not. */
function integer(raw: RawQuery, name: string, fallback: number, min: number): number | string {
  const v = single(raw, name);
  if (v === undefined || v === "") return fallback;
  if (typeof v !== "string" || !/^\d{1,9}$/.test(v) || Number(v) < min) return `${name} must be a whole number of at least ${min}`;
  return Number(v);
}

export function matches(item: DiscoveryResource, f: Filters): boolean {
  if (f.type !== undefined && item.type !== f.type) return false;
  if (f.extensions?.some((e) => !Object.hasOwn(item.extensions, e))) return false;
  if (f.payTo === undefined && f.scheme === undefined && f.network === undefined) return true;
  // The filters on payment fields hold together for one accepts entry, not across entries.
  return item.accepts.some(
    (a) =>
      (f.payTo === undefined || normalAddress(a.payTo) === f.payTo) &&
      (f.scheme === undefined || a.scheme === f.scheme) &&
      (f.network === undefined || a.network === f.network),
  );
}

/** Stable order for offset paging: by resource, then id (a payment moves nothing between pages). */
export function byResource<T extends { id: string; item: DiscoveryResource }>(a: T, b: T): number {
  return a.item.resource < b.item.resource ? -1 : a.item.resource > b.item.resource ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Lower-case words of two characters or more, each once, at most SEARCH_LIMITS.words. */
export function words(text: string): string[] {
  const found = text.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter((w) => w.length >= 2);
  return [...new Set(found)].slice(0, SEARCH_LIMITS.words);
}

/** What a search looks in, lower-cased once per item, heaviest first. */
export interface SearchText {
  /** Service name and tags: chosen by the provider to be found by. */
  name: string;
  /** Description, tool name and description. */
  about: string;
  /** Host and path of the resource. */
  url: string;
}

export function searchText(item: DiscoveryResource): SearchText {
  const input = item.extensions.bazaar.info.input;
  const tool = item.type === "mcp" ? [input.toolName, input.description].filter((s) => typeof s === "string").join(" ") : "";
  return {
    name: [item.serviceName ?? "", ...(item.tags ?? [])].join(" ").toLowerCase(),
    about: `${item.description ?? ""} ${tool}`.toLowerCase(),
    url: item.resource.toLowerCase(),
  };
}

/** Relevance of an item to `query`: 3 per word in its name or tags, 2 in what it says about itself, 1 in its URL; 0 is no match. */
export function score(text: SearchText, query: string[]): number {
  let total = 0;
  for (const w of query) total += text.name.includes(w) ? 3 : text.about.includes(w) ? 2 : text.url.includes(w) ? 1 : 0;
  return total;
}

/** Opaque to clients; the offset of the next result. */
export function makeCursor(offset: number): string {
  return Buffer.from(`o:${offset}`).toString("base64url");
}

function readCursor(cursor: string): number | undefined {
  if (cursor.length > 32) return undefined;
  const m = /^o:(\d{1,9})$/.exec(Buffer.from(cursor, "base64url").toString());
  return m ? Number(m[1]) : undefined;
}
