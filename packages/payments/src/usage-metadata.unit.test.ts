import { describe, expect, it } from "vitest";
import { costUnits, formatCost, parseUsageMetadata } from "./usage-metadata.ts";

describe("parseUsageMetadata", () => {
  it.each<[string, unknown, unknown]>([
    ["absent", undefined, undefined],
    ["null", null, undefined],
    ["empty", {}, undefined],
    [
      "every field, unknown ones dropped",
      { inputTokens: 12, outputTokens: 340, model: "meta-llama/Llama-3.1-8B", cost: "0.0042", sessionId: "s-1", streaming: true, requestCount: 9, evil: "<script>" },
      { inputTokens: 12, outputTokens: 340, model: "meta-llama/Llama-3.1-8B", cost: "0.0042", sessionId: "s-1", streaming: true },
    ],
    ["a cost given as a number", { cost: 0.25 }, { cost: "0.25" }],
    ["markup in text is data, kept as it is", { model: "<img src=x onerror=alert(1)>" }, { model: "<img src=x onerror=alert(1)>" }],
  ])("takes %s", (_, raw, expected) => {
    expect(parseUsageMetadata({ usageMetadata: raw })).toEqual(expected === undefined ? { ok: true } : { ok: true, value: expected });
  });

  it.each<[string, unknown, RegExp]>([
    ["not an object", "tokens", /^usageMetadata: /],
    ["negative tokens", { inputTokens: -1 }, /^usageMetadata\.inputTokens: /],
    ["fractional tokens", { outputTokens: 1.5 }, /^usageMetadata\.outputTokens: /],
    ["too many tokens", { outputTokens: 1e13 }, /^usageMetadata\.outputTokens: /],
    ["a long model", { model: "m".repeat(129) }, /model is at most 128 characters/],
    ["a control character", { sessionId: "a\nb" }, /sessionId holds control characters/],
    ["a cost in exponent notation", { cost: 1e-7 }, /cost must be a non-negative decimal/],
    ["a negative cost", { cost: "-1" }, /cost must be a non-negative decimal/],
    ["too many decimals", { cost: "0.1234567890123456789" }, /cost must be/],
    ["streaming not a boolean", { streaming: "yes" }, /^usageMetadata\.streaming: /],
  ])("refuses %s with its reason", (_, raw, message) => {
    const parsed = parseUsageMetadata({ usageMetadata: raw });
    expect(parsed).toMatchObject({ ok: false, reason: "invalid_usage_metadata" });
    expect((parsed as { message: string }).message).toMatch(message);
  });

  it("sums costs exactly", () => {
    expect(formatCost(costUnits("0.1") + costUnits("0.2"))).toBe("0.3");
    expect(formatCost(costUnits("12") + costUnits("0.000000000000000001"))).toBe("12.000000000000000001");
    expect(formatCost(0n)).toBe("0");
    expect(costUnits(undefined)).toBe(0n);
  });
});

describe("usageMetadata in the x-usage-metadata header (official clients send only the three body fields)", () => {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64");
  it("reads it when the body has none; the body's wins", () => {
    expect(parseUsageMetadata({}, b64({ inputTokens: 4, extra: 1 }))).toEqual({ ok: true, value: { inputTokens: 4 } });
    expect(parseUsageMetadata({ usageMetadata: { outputTokens: 2 } }, b64({ inputTokens: 4 }))).toEqual({ ok: true, value: { outputTokens: 2 } });
  });
  it.each([
    ["not base64", "{not base64}", /must be base64 of a JSON object/],
    ["base64 of no JSON", Buffer.from("nope").toString("base64"), /must be base64 of a JSON object/],
    ["too long", "A".repeat(5_000), /at most 4096 characters/],
    ["base64 of a bad value", b64({ inputTokens: -3 }), /^usageMetadata\.inputTokens: /],
  ])("refuses %s", (_, header, message) => {
    const parsed = parseUsageMetadata({}, header);
    expect(parsed).toMatchObject({ ok: false, reason: "invalid_usage_metadata" });
    expect((parsed as { message: string }).message).toMatch(message);
  });
});
