/**
 * The bazaar discovery extension (x402 `extensions/bazaar.md`) without I/O: reading a payment's
 * declaration, the field and schema rules, the catalogue with its quotas and freshness, and the
 * discovery queries. Stores live in `@facilitator/ledger`; the HTTP routes in `@facilitator/server`.
 */
export * from "./types.ts";
export { readDeclaration, normalAddress, DECLARATION_LIMITS, type Declaration, type Draft, type Refusal } from "./declaration.ts";
export { checkAgainstSchema, externalReference, SCHEMA_STEP_BUDGET, type SchemaCheck } from "./json-schema.ts";
export { isValidRouteTemplate, isSafeIconUrl, cleanTags } from "./fields.ts";
export { parseListQuery, parseSearchQuery, LIST_LIMITS, SEARCH_LIMITS, type ListQuery, type SearchQuery, type Filters } from "./query.ts";
export { Catalog, mergeAccepts, encodeExtensionResponses, MAX_ACCEPTS, type CatalogLimits, type CatalogOptions, type ListResponse, type SearchResponse } from "./catalog.ts";
