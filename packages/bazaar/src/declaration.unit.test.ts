import { describe, expect, it } from "vitest";
import { readDeclaration, type Draft } from "./declaration.ts";
import { declaringPayload, officialExtension, PAY_TO, PAYER, weatherExtension } from "./testing/declarations.ts";

const valid = (payload: unknown, payer: string | undefined = PAYER): Draft => {
  const d = readDeclaration(payload, payer);
  if (d.kind !== "valid") throw new Error(`expected a valid declaration, got ${JSON.stringify(d)}`);
  return d.draft;
};
const nest = (levels: number): unknown => (levels === 0 ? {} : { a: nest(levels - 1) });
const withInput = (input: Record<string, unknown>) => ({ info: { input }, schema: { type: "object" } });
const mcp = (over: Record<string, unknown>) => withInput({ type: "mcp", toolName: "forecast", inputSchema: { type: "object" }, ...over });

describe("readDeclaration: declarations the official 2.27 server sends", () => {
  it("catalogues a templated GET route under its canonical URL, one entry for every concrete path", () => {
    const paris = valid(declaringPayload(weatherExtension("/weather/paris")));
    const rome = valid(declaringPayload(weatherExtension("/weather/rome"), { url: "https://api.example.com/weather/rome?units=si#top" }));
    expect(paris.item).toMatchObject({ resource: "https://api.example.com/weather/:city", type: "http", x402Version: 2, description: "Weather by city", mimeType: "application/json" });
    expect(paris.item.extensions.bazaar.routeTemplate).toBe("/weather/:city");
    expect(paris.item.extensions.bazaar.info.input).toMatchObject({ method: "GET", pathParams: { city: "paris" } });
    expect(rome.id).toBe(paris.id);
    expect(paris.payTo).toBe(PAY_TO);
    expect(paris.accept).toEqual({ scheme: "exact", network: "eip155:84532", amount: "1000", asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e", payTo: PAY_TO, maxTimeoutSeconds: 60, extra: { name: "USDC", version: "2" } });
  });

  it("catalogues a POST route with a JSON body, and an MCP tool by URL and tool name", () => {
    const post = officialExtension({ bodyType: "json", input: { prompt: "hi" }, inputSchema: { properties: { prompt: { type: "string" } } } }, "POST", "/chat", "/chat");
    expect(valid(declaringPayload(post, { url: "https://api.example.com/chat" })).item.resource).toBe("https://api.example.com/chat");
    const tool = officialExtension({ toolName: "forecast", description: "Forecast", inputSchema: { type: "object", properties: { city: { type: "string" } } } }, "POST", "/mcp", "/mcp");
    const a = valid(declaringPayload(tool, { url: "https://api.example.com/mcp" }));
    const b = valid(declaringPayload({ ...tool, info: { input: { ...(tool.info as { input: object }).input, toolName: "history" } } }, { url: "https://api.example.com/mcp" }));
    expect(a.item).toMatchObject({ type: "mcp", resource: "https://api.example.com/mcp" });
    expect(a.id).not.toBe(b.id);
  });

  it("sees nothing to catalogue without a v2 bazaar extension", () => {
    expect(readDeclaration({ x402Version: 1, scheme: "exact", network: "base", payload: {} })).toEqual({ kind: "none" });
    expect(readDeclaration({ ...declaringPayload(undefined), extensions: { "payment-identifier": {} } })).toEqual({ kind: "none" });
    expect(readDeclaration({ ...declaringPayload(undefined), extensions: undefined })).toEqual({ kind: "none" });
    expect(readDeclaration(null)).toEqual({ kind: "none" });
  });
});

describe("readDeclaration: refusals, each with its reason", () => {
  const weather = weatherExtension();
  const cases: [string, unknown, string][] = [
    ["extension not an object", declaringPayload("bazaar"), "extension_invalid"],
    ["extension nested 40 deep", declaringPayload({ ...weather, junk: nest(40) }), "extension_too_deep"],
    ["a 20 KB output example", declaringPayload({ ...weather, info: { ...(weather.info as object), output: { type: "json", example: "x".repeat(20_000) } } }), "extension_too_large"],
    ["no info", declaringPayload({ schema: {} }), "info_invalid"],
    ["output not an object", declaringPayload({ ...weather, info: { ...(weather.info as object), output: "text" } }), "info_invalid"],
    ["no schema", declaringPayload({ info: weather.info }), "schema_invalid"],
    ["input type ftp", declaringPayload(withInput({ type: "ftp" })), "input_type_invalid"],
    ["no method (server extension not registered)", declaringPayload(withInput({ type: "http" })), "method_invalid"],
    ["method TRACE", declaringPayload(withInput({ type: "http", method: "TRACE" })), "method_invalid"],
    ["POST without bodyType", declaringPayload(withInput({ type: "http", method: "POST", body: {} })), "body_type_invalid"],
    ["GET with a bodyType", declaringPayload(withInput({ type: "http", method: "GET", bodyType: "json" })), "body_type_invalid"],
    ["MCP tool without a name", declaringPayload(mcp({ toolName: "" })), "tool_name_invalid"],
    ["MCP tool name of 200 characters", declaringPayload(mcp({ toolName: "t".repeat(200) })), "tool_name_invalid"],
    ["MCP tool name with a control character", declaringPayload(mcp({ toolName: "a\u0007b" })), "tool_name_invalid"],
    ["MCP tool without inputSchema", declaringPayload(mcp({ inputSchema: undefined })), "input_schema_invalid"],
    ["MCP transport ws", declaringPayload(mcp({ transport: "ws" })), "transport_invalid"],
    ["schema $ref to a URL", declaringPayload({ ...weather, schema: { $ref: "https://evil.example/schema.json" } }), "schema_external_reference"],
    ["schema $id to a file", declaringPayload({ ...weather, schema: { type: "object", properties: { input: { $id: "file:///etc/passwd" } } } }), "schema_external_reference"],
    ["info that breaks its own schema", declaringPayload({ ...weather, info: { input: { ...(weather.info as { input: object }).input, queryParams: { units: 7 } } } }), "info_schema_mismatch"],
    ["schema with an unknown type", declaringPayload({ ...weather, schema: { type: "thing" } }), "schema_invalid"],
    ["no resource", declaringPayload(weather, { url: undefined }), "resource_missing"],
    ["javascript: URL", declaringPayload(weather, { url: "javascript:alert(1)" }), "resource_url_invalid"],
    ["ftp URL", declaringPayload(weather, { url: "ftp://api.example.com/weather" }), "resource_url_invalid"],
    ["URL with credentials", declaringPayload(weather, { url: "https://user:secret@api.example.com/weather" }), "resource_url_invalid"],
    ["URL of 3,000 characters", declaringPayload(weather, { url: `https://api.example.com/${"a".repeat(3_000)}` }), "resource_url_invalid"],
    ["description of 100 KB", declaringPayload(weather, { description: "d".repeat(100_000) }), "description_too_long"],
    ["description with a terminal escape", declaringPayload(weather, { description: "ok\u001b[2Jgone" }), "description_invalid"],
    ["description not text", declaringPayload(weather, { description: { html: "<b>" } }), "description_invalid"],
    ["MIME type with markup", declaringPayload(weather, { mimeType: "<script>alert(1)</script>" }), "mime_type_invalid"],
    ["requirements with a 5 KB extra", declaringPayload(weather, {}, { extra: { blob: "b".repeat(5_000) } }), "requirements_too_large"],
    ["requirements without payTo", declaringPayload(weather, {}, { payTo: undefined }), "requirements_invalid"],
  ];
  it.each(cases)("%s", (_name, payload, reason) => {
    const d = readDeclaration(payload, PAYER);
    expect(d).toMatchObject({ kind: "refused", reason });
    expect((d as { message: string }).message.length).toBeGreaterThan(10);
  });

  it("refuses a payment to oneself, whatever the address's case", () => {
    expect(readDeclaration(declaringPayload(weather), PAY_TO.toUpperCase().replace("0X", "0x"))).toMatchObject({ kind: "refused", reason: "self_payment" });
  });
});

describe("readDeclaration: what the spec drops softly, and what is kept as data", () => {
  const weather = weatherExtension();
  it.each([
    ["traversal", "/weather/../admin"],
    ["double-encoded traversal", "/weather/%252e%252e/admin"],
    ["another URL", "/x/http://evil.example"],
    ["a query string", "/weather?city=:city"],
    ["over 512 characters", `/${"a".repeat(600)}`],
    ["not a string", 42],
  ])("a route template with %s falls back to the paid URL's path", (_name, routeTemplate) => {
    const d = valid(declaringPayload({ ...weather, routeTemplate }));
    expect(d.item.resource).toBe("https://api.example.com/weather/paris");
    expect(d.item.extensions.bazaar.routeTemplate).toBeUndefined();
  });

  it("keeps valid service metadata, drops what breaks the spec's rules", () => {
    const kept = valid(declaringPayload(weather, { serviceName: "Weather Co", tags: ["weather", "Weather", "", "x".repeat(40), "a", "b", "c", "d", "e"], iconUrl: "https://cdn.example.com/icon.png" }));
    expect(kept.item).toMatchObject({ serviceName: "Weather Co", tags: ["weather", "a", "b", "c", "d"], iconUrl: "https://cdn.example.com/icon.png" });
    for (const iconUrl of ["http://127.0.0.1/i.png", "http://2130706433/i.png", "http://0x7f000001/i.png", "http://localhost/i.png", "http://%6cocalhost/i.png", "http://ｌｏｃａｌｈｏｓｔ/i.png", "http://[::1]/i.png", "data:image/png;base64,AA", "https://u:p@cdn.example.com/i.png"]) {
      expect(valid(declaringPayload(weather, { iconUrl })).item.iconUrl, iconUrl).toBeUndefined();
    }
    const dropped = valid(declaringPayload(weather, { serviceName: "ünïcødé", tags: "weather" }));
    expect(dropped.item.serviceName).toBeUndefined();
    expect(dropped.item.tags).toBeUndefined();
  });

  it("keeps script in fields as the data it is, and the official empty description and MIME type as absent", () => {
    const script = '<script>alert("pwned")</script><img src=x onerror=alert(1)>';
    const d = valid(declaringPayload(weather, { description: script, serviceName: "<b>Evil</b>" }));
    expect(d.item.description).toBe(script);
    expect(d.item.serviceName).toBe("<b>Evil</b>");
    const bare = valid(declaringPayload(weather, { description: "", mimeType: "" }));
    expect(bare.item).not.toHaveProperty("description");
    expect(bare.item).not.toHaveProperty("mimeType");
  });

  it("stores only info, schema and routeTemplate of the extension", () => {
    const d = valid(declaringPayload({ ...weather, secret: "payer data", info: { ...(weather.info as object), extra: 1 } }));
    expect(Object.keys(d.item.extensions.bazaar).sort()).toEqual(["info", "routeTemplate", "schema"]);
    expect(Object.keys(d.item.extensions.bazaar.info).sort()).toEqual(["input", "output"]);
  });
});
