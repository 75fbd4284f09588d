/**
 * Reads the bazaar declaration a v2 payment payload carries (`extensions.bazaar`, echoed by the payer
 * from the resource server's 402) into a catalogue entry, or a refusal with its reason. Everything
 * here arrives from the payer, so every field is bounded and checked before it can be stored; values
 * are kept as data (a `<script>` in a description is a string like any other).
 */
import { createHash } from "node:crypto";
import { checkAgainstSchema, isObject } from "./json-schema.ts";
import { cleanTags, isSafeIconUrl, isShortAscii, isValidRouteTemplate, MAX_SERVICE_NAME_LENGTH } from "./fields.ts";
import type { AcceptedRequirements, CatalogedExtension, DiscoveryResource } from "./types.ts";

export const DECLARATION_LIMITS = {
  /** The bazaar extension as JSON (info, schema, routeTemplate): a real declaration is 1-3 KiB. */
  extensionBytes: 8 * 1024,
  /** Nesting of the extension's objects and arrays. */
  extensionDepth: 16,
  descriptionLength: 1_000,
  mimeTypeLength: 100,
  resourceUrlLength: 2_048,
  toolNameLength: 128,
  /** One `accepts` entry (the settled requirements, `extra` included) as JSON. */
  acceptBytes: 1_024,
  payToLength: 128,
} as const;

const QUERY_METHODS = new Set(["GET", "HEAD", "DELETE"]);
const BODY_METHODS = new Set(["POST", "PUT", "PATCH"]);
const BODY_TYPES = new Set(["json", "form-data", "text"]);
const MCP_TRANSPORTS = new Set(["streamable-http", "sse"]);
/** C0 controls and DEL, but tab and line breaks, which a description may hold. */
const CONTROL_IN_TEXT = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;
const MIME_TYPE = /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+(\s*;[\x20-\x7e]*)?$/i;

export interface Refusal {
  /** Stable code, e.g. `description_too_long`. */
  reason: string;
  /** What was wrong and what is allowed, for the resource server's operator. */
  message: string;
}

/** A declaration ready to be catalogued once its payment settled. */
export interface Draft {
  id: string;
  /** The payee, normalised (EVM addresses in lower case). */
  payTo: string;
  accept: AcceptedRequirements;
  item: Omit<DiscoveryResource, "accepts" | "lastUpdated">;
}

export type Declaration = { kind: "none" } | ({ kind: "refused" } & Refusal) | { kind: "valid"; draft: Draft };

const refuse = (reason: string, message: string): Declaration => ({ kind: "refused", reason, message });

/**
 * `payer`: who paid, when known (a payment to oneself proves nothing about a resource, and costs
 * nothing but our gas, so it catalogues nothing).
 */
export function readDeclaration(paymentPayload: unknown, payer?: string): Declaration {
  if (!isObject(paymentPayload) || paymentPayload.x402Version !== 2 || !isObject(paymentPayload.extensions)) return { kind: "none" };
  if (!Object.hasOwn(paymentPayload.extensions, "bazaar")) return { kind: "none" };
  const ext = paymentPayload.extensions.bazaar;
  if (!isObject(ext)) return refuse("extension_invalid", "extensions.bazaar must be an object {info, schema, routeTemplate?}");
  if (exceedsDepth(ext, DECLARATION_LIMITS.extensionDepth)) {
    return refuse("extension_too_deep", `extensions.bazaar nests deeper than ${DECLARATION_LIMITS.extensionDepth} levels`);
  }
  const bytes = Buffer.byteLength(JSON.stringify(ext));
  if (bytes > DECLARATION_LIMITS.extensionBytes) {
    return refuse("extension_too_large", `extensions.bazaar is ${bytes} bytes as JSON; at most ${DECLARATION_LIMITS.extensionBytes} are catalogued`);
  }
  const { info, schema } = ext;
  if (!isObject(info) || !isObject(info.input)) return refuse("info_invalid", "extensions.bazaar.info.input must be an object");
  if (info.output !== undefined && !isObject(info.output)) return refuse("info_invalid", "extensions.bazaar.info.output must be an object when present");
  if (!isObject(schema)) return refuse("schema_invalid", "extensions.bazaar.schema must be a JSON Schema object");
  const input = info.input;
  const shape = checkInput(input);
  if (shape) return shape;
  const checked = checkAgainstSchema(info, schema);
  if (!checked.ok) return refuse(checked.code, checked.message);

  const resource = readResource(paymentPayload.resource);
  if ("reason" in resource) return refuse(resource.reason, resource.message);
  const accept = readAccept(paymentPayload.accepted);
  if ("reason" in accept) return refuse(accept.reason, accept.message);
  const payTo = normalAddress(accept.payTo);
  if (payer !== undefined && normalAddress(payer) === payTo) {
    return refuse("self_payment", "the payer is the payee: a payment to oneself does not show that anyone pays for the resource");
  }

  const type = input.type as "http" | "mcp";
  const template = type === "http" && isValidRouteTemplate(ext.routeTemplate) ? ext.routeTemplate : undefined;
  // The catalogue key: one entry for every concrete URL of a templated route (the spec's canonical URL).
  const url = `${resource.url.origin}${template ?? resource.url.pathname}`;
  const operation = type === "http" ? (input.method as string) : (input.toolName as string);
  const extension: CatalogedExtension = {
    info: { input, ...(info.output !== undefined ? { output: info.output as Record<string, unknown> } : {}) },
    schema,
    ...(template ? { routeTemplate: template } : {}),
  };
  return {
    kind: "valid",
    draft: {
      id: createHash("sha256").update(JSON.stringify([type, url, operation, payTo])).digest("hex").slice(0, 32),
      payTo,
      accept,
      item: { resource: url, type, x402Version: 2, ...resource.meta, extensions: { bazaar: extension } },
    },
  };
}

/** The spec's rules on `info.input`, by its `type`. */
function checkInput(input: Record<string, unknown>): Declaration | undefined {
  if (input.type === "http") {
    const method = input.method;
    if (typeof method !== "string" || !(QUERY_METHODS.has(method) || BODY_METHODS.has(method))) {
      return refuse("method_invalid", `info.input.method must be one of GET, HEAD, DELETE, POST, PUT, PATCH (a resource server sets it through the bazaar server extension), got ${short(method)}`);
    }
    if (BODY_METHODS.has(method) && !BODY_TYPES.has(input.bodyType as string)) {
      return refuse("body_type_invalid", `info.input.bodyType must be json, form-data or text for ${method}, got ${short(input.bodyType)}`);
    }
    if (QUERY_METHODS.has(method) && input.bodyType !== undefined) return refuse("body_type_invalid", `info.input.bodyType is for POST, PUT and PATCH, not ${method}`);
    return undefined;
  }
  if (input.type === "mcp") {
    if (!isShortAscii(input.toolName, DECLARATION_LIMITS.toolNameLength)) {
      return refuse("tool_name_invalid", `info.input.toolName must be printable ASCII of 1 to ${DECLARATION_LIMITS.toolNameLength} characters`);
    }
    if (!isObject(input.inputSchema)) return refuse("input_schema_invalid", "info.input.inputSchema must be an object (the tool's JSON Schema)");
    if (input.transport !== undefined && !MCP_TRANSPORTS.has(input.transport as string)) {
      return refuse("transport_invalid", `info.input.transport must be streamable-http or sse, got ${short(input.transport)}`);
    }
    return undefined;
  }
  return refuse("input_type_invalid", `info.input.type must be http or mcp, got ${short(input.type)}`);
}

type ResourceMeta = Pick<DiscoveryResource, "description" | "mimeType" | "serviceName" | "tags" | "iconUrl">;

function readResource(raw: unknown): { url: URL; meta: ResourceMeta } | Refusal {
  if (!isObject(raw) || typeof raw.url !== "string") return { reason: "resource_missing", message: "paymentPayload.resource.url is missing: there is nothing to catalogue" };
  const url = parseHttpUrl(raw.url);
  if (!url) {
    return { reason: "resource_url_invalid", message: `resource.url must be an absolute http or https URL without credentials, of at most ${DECLARATION_LIMITS.resourceUrlLength} characters` };
  }
  const meta: ResourceMeta = {};
  // The official middleware sends "" for a description or MIME type the route did not set.
  if (raw.description !== undefined && raw.description !== "") {
    if (typeof raw.description !== "string" || CONTROL_IN_TEXT.test(raw.description)) {
      return { reason: "description_invalid", message: "resource.description must be text without control characters" };
    }
    if (raw.description.length > DECLARATION_LIMITS.descriptionLength) {
      return { reason: "description_too_long", message: `resource.description has ${raw.description.length} characters; at most ${DECLARATION_LIMITS.descriptionLength} are catalogued` };
    }
    meta.description = raw.description;
  }
  if (raw.mimeType !== undefined && raw.mimeType !== "") {
    if (typeof raw.mimeType !== "string" || raw.mimeType.length > DECLARATION_LIMITS.mimeTypeLength || !MIME_TYPE.test(raw.mimeType)) {
      return { reason: "mime_type_invalid", message: `resource.mimeType must be a media type such as application/json, of at most ${DECLARATION_LIMITS.mimeTypeLength} characters` };
    }
    meta.mimeType = raw.mimeType;
  }
  // Service metadata is soft by the spec: a field that breaks its rule is dropped, the rest kept.
  if (isShortAscii(raw.serviceName, MAX_SERVICE_NAME_LENGTH)) meta.serviceName = raw.serviceName;
  const tags = cleanTags(raw.tags);
  if (tags) meta.tags = tags;
  if (isSafeIconUrl(raw.iconUrl)) meta.iconUrl = raw.iconUrl;
  return { url, meta };
}

function parseHttpUrl(raw: string): URL | undefined {
  if (!raw || raw.length > DECLARATION_LIMITS.resourceUrlLength || /[\x00-\x1f\x7f]/.test(raw)) return undefined;
  try {
    const url = new URL(raw);
    return (url.protocol === "http:" || url.protocol === "https:") && !url.username && !url.password && url.hostname ? url : undefined;
  } catch {
    return undefined;
  }
}

/** The requirements the payer accepted (and the settle held to), as an `accepts` entry. */
function readAccept(raw: unknown): AcceptedRequirements | Refusal {
  const bad = { reason: "requirements_invalid", message: "paymentPayload.accepted is not a v2 requirements object" };
  if (!isObject(raw)) return bad;
  const { scheme, network, amount, asset, payTo, maxTimeoutSeconds, extra } = raw;
  const strings = [scheme, network, amount, asset, payTo];
  if (!strings.every((s) => typeof s === "string" && s.length > 0) || typeof maxTimeoutSeconds !== "number") return bad;
  if ((payTo as string).length > DECLARATION_LIMITS.payToLength) return { reason: "requirements_invalid", message: `payTo is longer than ${DECLARATION_LIMITS.payToLength} characters` };
  const accept: AcceptedRequirements = {
    scheme: scheme as string,
    network: network as string,
    amount: amount as string,
    asset: asset as string,
    payTo: payTo as string,
    maxTimeoutSeconds,
    ...(isObject(extra) ? { extra } : {}),
  };
  const bytes = Buffer.byteLength(JSON.stringify(accept));
  if (bytes > DECLARATION_LIMITS.acceptBytes) {
    return { reason: "requirements_too_large", message: `the accepted requirements are ${bytes} bytes as JSON; at most ${DECLARATION_LIMITS.acceptBytes} are catalogued` };
  }
  return accept;
}

/** EVM addresses compare without case; other chains' addresses are case-sensitive. */
export function normalAddress(address: string): string {
  return /^0x[0-9a-fA-F]{40}$/.test(address) ? address.toLowerCase() : address;
}

/** True when `value` nests objects or arrays deeper than `max` (stops looking there: input may be deep). */
function exceedsDepth(value: unknown, max: number): boolean {
  if (typeof value !== "object" || value === null) return false;
  if (max === 0) return true;
  for (const v of Object.values(value)) if (exceedsDepth(v, max - 1)) return true;
  return false;
}

const short = (v: unknown) => (v === undefined ? "nothing" : (JSON.stringify(v) ?? String(v)).slice(0, 60));
