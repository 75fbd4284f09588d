/**
 * Checks a bazaar `info` against the `schema` its declaration carries (the spec: facilitators must
 * validate before cataloguing, and must not resolve external references). The schema comes from
 * whoever pays, so this is our own bounded checker of the structural keywords, not a general JSON
 * Schema engine: no code generation, no regular expressions from the input (`pattern` would be a
 * ReDoS door), no reference resolution, and a step budget against combinator blow-ups.
 *
 * Enforced: type, const, enum, properties, required, additionalProperties, items (after prefixItems),
 * allOf, anyOf, oneOf. Everything else (pattern, format, bounds, $ref to the same document, ...) is
 * accepted without being checked.
 */

export type SchemaCheck = { ok: true } | { ok: false; code: SchemaFailure; message: string };
export type SchemaFailure = "schema_external_reference" | "schema_invalid" | "schema_too_complex" | "info_schema_mismatch";

/** Subschema evaluations one check may take; a declaration from a real server needs a few hundred. */
export const SCHEMA_STEP_BUDGET = 20_000;

const REFERENCE_KEYWORDS = new Set(["$ref", "$id", "$dynamicRef", "$recursiveRef"]);
const TYPES = new Set(["object", "array", "string", "number", "integer", "boolean", "null"]);

class Refusal extends Error {
  constructor(
    readonly code: SchemaFailure,
    message: string,
  ) {
    super(message);
  }
}

/** A `$ref` or `$id` that is not a same-document fragment (`#...`) anywhere in `schema`. */
export function externalReference(schema: unknown): string | undefined {
  if (Array.isArray(schema)) {
    for (const s of schema) {
      const found = externalReference(s);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (!isObject(schema)) return undefined;
  for (const [k, v] of Object.entries(schema)) {
    if (REFERENCE_KEYWORDS.has(k) && !(typeof v === "string" && v.startsWith("#"))) return `${k}: ${JSON.stringify(v)?.slice(0, 80)}`;
    const found = externalReference(v);
    if (found !== undefined) return found;
  }
  return undefined;
}

export function checkAgainstSchema(value: unknown, schema: unknown): SchemaCheck {
  const external = externalReference(schema);
  if (external !== undefined) return { ok: false, code: "schema_external_reference", message: `the schema refers outside itself (${external}); only "#..." references are allowed` };
  const budget = { steps: 0 };
  try {
    const problem = check(value, schema, "", budget);
    return problem === undefined ? { ok: true } : { ok: false, code: "info_schema_mismatch", message: `info does not match its schema: ${problem}` };
  } catch (e) {
    if (e instanceof Refusal) return { ok: false, code: e.code, message: e.message };
    throw e;
  }
}

/** The first problem found, as `<path>: <what>`, or undefined. */
function check(value: unknown, schema: unknown, path: string, budget: { steps: number }): string | undefined {
  if (++budget.steps > SCHEMA_STEP_BUDGET) throw new Refusal("schema_too_complex", `the schema takes more than ${SCHEMA_STEP_BUDGET} steps to check`);
  if (schema === true) return undefined;
  if (schema === false) return `${at(path)}: no value is allowed here`;
  if (!isObject(schema)) throw new Refusal("schema_invalid", `${at(path)}: a schema must be an object or a boolean`);
  const s = schema;

  if (s.type !== undefined) {
    const types = Array.isArray(s.type) ? s.type : [s.type];
    if (!types.length || !types.every((t) => typeof t === "string" && TYPES.has(t))) throw new Refusal("schema_invalid", `${at(path)}: unknown type ${JSON.stringify(s.type)?.slice(0, 80)}`);
    if (!types.some((t) => hasType(value, t as string))) return `${at(path)}: expected ${types.join(" or ")}, got ${typeName(value)}`;
  }
  if ("const" in s && !sameJson(value, s.const)) return `${at(path)}: must equal ${short(s.const)}`;
  if (s.enum !== undefined) {
    if (!Array.isArray(s.enum)) throw new Refusal("schema_invalid", `${at(path)}: enum must be an array`);
    if (!s.enum.some((e) => sameJson(value, e))) return `${at(path)}: must be one of ${short(s.enum)}`;
  }
  if (isObject(value)) {
    const problem = checkObject(value, s, path, budget);
    if (problem) return problem;
  }
  if (Array.isArray(value) && s.items !== undefined) {
    const from = Array.isArray(s.prefixItems) ? s.prefixItems.length : 0;
    for (let i = from; i < value.length; i++) {
      const problem = check(value[i], s.items, `${path}/${i}`, budget);
      if (problem) return problem;
    }
  }
  return checkCombinators(value, s, path, budget);
}

function checkObject(value: Record<string, unknown>, s: Record<string, unknown>, path: string, budget: { steps: number }): string | undefined {
  const properties = s.properties === undefined ? {} : s.properties;
  if (!isObject(properties)) throw new Refusal("schema_invalid", `${at(path)}: properties must be an object`);
  if (s.required !== undefined) {
    if (!Array.isArray(s.required) || !s.required.every((r) => typeof r === "string")) throw new Refusal("schema_invalid", `${at(path)}: required must be a list of names`);
    const missing = s.required.find((r) => !Object.hasOwn(value, r));
    if (missing !== undefined) return `${at(path)}: ${missing} is required`;
  }
  for (const [k, sub] of Object.entries(properties)) {
    if (!Object.hasOwn(value, k)) continue;
    const problem = check(value[k], sub, `${path}/${k}`, budget);
    if (problem) return problem;
  }
  // patternProperties are not evaluated (no regular expressions from the input), so with them
  // present nothing can be called "additional".
  if (s.additionalProperties === undefined || s.patternProperties !== undefined) return undefined;
  for (const [k, v] of Object.entries(value)) {
    if (Object.hasOwn(properties, k)) continue;
    if (s.additionalProperties === false) return `${at(path)}: ${k} is not allowed`;
    const problem = check(v, s.additionalProperties, `${path}/${k}`, budget);
    if (problem) return problem;
  }
  return undefined;
}

function checkCombinators(value: unknown, s: Record<string, unknown>, path: string, budget: { steps: number }): string | undefined {
  for (const keyword of ["allOf", "anyOf", "oneOf"] as const) {
    const list = s[keyword];
    if (list === undefined) continue;
    if (!Array.isArray(list) || !list.length) throw new Refusal("schema_invalid", `${at(path)}: ${keyword} must be a non-empty list`);
    const problems = list.map((sub) => check(value, sub, path, budget));
    const passed = problems.filter((p) => p === undefined).length;
    if (keyword === "allOf" && passed < list.length) return problems.find((p) => p !== undefined);
    if (keyword === "anyOf" && passed === 0) return `${at(path)}: matches none of anyOf (${problems[0]})`;
    if (keyword === "oneOf" && passed !== 1) return `${at(path)}: matches ${passed} of oneOf, not exactly one`;
  }
  return undefined;
}

function hasType(value: unknown, type: string): boolean {
  switch (type) {
    case "object":
      return isObject(value);
    case "array":
      return Array.isArray(value);
    case "integer":
      return Number.isInteger(value);
    case "number":
      return typeof value === "number" && Number.isFinite(value);
    case "null":
      return value === null;
    default:
      return typeof value === type;
  }
}

function typeName(value: unknown): string {
  return value === null ? "null" : Array.isArray(value) ? "array" : typeof value;
}

/** JSON equality: same primitives, arrays in order, objects with the same keys in any order. */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => sameJson(x, b[i]));
  }
  if (!isObject(a) || !isObject(b)) return false;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && sameJson(a[k], b[k]));
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

const at = (path: string) => `info${path}`;
const short = (v: unknown) => (JSON.stringify(v) ?? String(v)).slice(0, 80);
