import { describe, expect, it } from "vitest";
import { checkAgainstSchema, externalReference, SCHEMA_STEP_BUDGET } from "./json-schema.ts";

const obj = (properties: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ type: "object", properties, ...extra });

describe("checkAgainstSchema", () => {
  const cases: [string, unknown, unknown, true | string][] = [
    ["true accepts anything", { a: [1, null] }, true, true],
    ["false accepts nothing", 1, false, "info_schema_mismatch"],
    ["annotations only", { a: 1 }, { $schema: "https://json-schema.org/draft/2020-12/schema", title: "t", description: "d" }, true],
    ["type string", "x", { type: "string" }, true],
    ["type mismatch", 1, { type: "string" }, "info_schema_mismatch"],
    ["integer rejects 1.5", 1.5, { type: "integer" }, "info_schema_mismatch"],
    ["number accepts 1.5", 1.5, { type: "number" }, true],
    ["type list", null, { type: ["string", "null"] }, true],
    ["array is not object", [], { type: "object" }, "info_schema_mismatch"],
    ["unknown type", 1, { type: "int" }, "schema_invalid"],
    ["empty type list", 1, { type: [] }, "schema_invalid"],
    ["const equal object, keys in any order", { a: 1, b: [2] }, { const: { b: [2], a: 1 } }, true],
    ["const differs", "GET", { const: "POST" }, "info_schema_mismatch"],
    ["enum hit", "GET", { enum: ["GET", "HEAD"] }, true],
    ["enum miss", "PUT", { enum: ["GET", "HEAD"] }, "info_schema_mismatch"],
    ["enum not a list", "GET", { enum: "GET" }, "schema_invalid"],
    ["required present", { a: 1 }, obj({}, { required: ["a"] }), true],
    ["required missing", {}, obj({}, { required: ["a"] }), "info_schema_mismatch"],
    ["required inherited from the prototype does not count", {}, obj({}, { required: ["constructor"] }), "info_schema_mismatch"],
    ["required not names", {}, obj({}, { required: [1] }), "schema_invalid"],
    ["nested property mismatch", { a: { b: "x" } }, obj({ a: obj({ b: { type: "number" } }) }), "info_schema_mismatch"],
    ["properties not an object", { a: 1 }, { properties: [] }, "schema_invalid"],
    ["additionalProperties false", { a: 1, b: 2 }, obj({ a: {} }, { additionalProperties: false }), "info_schema_mismatch"],
    ["additionalProperties schema", { a: 1, b: "x" }, obj({ a: {} }, { additionalProperties: { type: "string" } }), true],
    ["additionalProperties left alone beside patternProperties", { x1: 1 }, obj({}, { patternProperties: { "^x": {} }, additionalProperties: false }), true],
    ["items", [1, 2, "3"], { type: "array", items: { type: "number" } }, "info_schema_mismatch"],
    ["items after prefixItems", ["a", 1], { prefixItems: [{ type: "string" }], items: { type: "number" } }, true],
    ["allOf", 3, { allOf: [{ type: "number" }, { enum: [3] }] }, true],
    ["allOf one fails", 4, { allOf: [{ type: "number" }, { enum: [3] }] }, "info_schema_mismatch"],
    ["anyOf", "x", { anyOf: [{ type: "number" }, { type: "string" }] }, true],
    ["anyOf none", true, { anyOf: [{ type: "number" }, { type: "string" }] }, "info_schema_mismatch"],
    ["oneOf two match", 1, { oneOf: [{ type: "number" }, { type: "integer" }] }, "info_schema_mismatch"],
    ["oneOf empty", 1, { oneOf: [] }, "schema_invalid"],
    ["a subschema that is a string", { a: 1 }, obj({ a: "string" }), "schema_invalid"],
    ["pattern is not evaluated (no regular expressions from the input)", "aaaaaaaaaaaaaaaaaaaaaaaaaaaa!", { pattern: "^(a+)+$" }, true],
    ["$ref inside the document is accepted unresolved", { a: 1 }, obj({ a: { $ref: "#/$defs/x" } }), true],
    ["$ref to a URL", {}, { $ref: "https://evil.example/s.json" }, "schema_external_reference"],
    ["$ref deep in a list", {}, { anyOf: [{}, { items: { $ref: "other.json" } }] }, "schema_external_reference"],
    ["$id that is not a fragment", {}, { $id: "urn:x" }, "schema_external_reference"],
  ];
  it.each(cases)("%s", (_name, value, schema, expected) => {
    const result = checkAgainstSchema(value, schema);
    if (expected === true) expect(result).toEqual({ ok: true });
    else expect(result).toMatchObject({ ok: false, code: expected });
  });

  it("names the path of the first problem", () => {
    expect(checkAgainstSchema({ input: { method: "PUT" } }, obj({ input: obj({ method: { enum: ["GET"] } }) }))).toMatchObject({
      message: expect.stringContaining("info/input/method: must be one of"),
    });
  });

  it("stops a combinator over a long array within its step budget", () => {
    // Each of 10 branches checks 5,000 items before failing on the last: 50,000 steps to the end.
    const value = [...Array.from({ length: 5_000 }, () => "s"), 1];
    const schema = { anyOf: Array.from({ length: 10 }, () => ({ items: { type: "string" } })) };
    expect(checkAgainstSchema(value, schema)).toMatchObject({ ok: false, code: "schema_too_complex", message: expect.stringContaining(String(SCHEMA_STEP_BUDGET)) });
    // and a smaller one runs to its answer
    expect(checkAgainstSchema([...value.slice(0, 500), 1], schema)).toMatchObject({ ok: false, code: "info_schema_mismatch" });
  });

  it("finds no external reference in the official declarations' schemas", () => {
    expect(externalReference({ $schema: "https://json-schema.org/draft/2020-12/schema", properties: { input: { $ref: "#/x" } } })).toBeUndefined();
  });
});
