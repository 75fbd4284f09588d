import { describe, expect, it } from "vitest";
import { loadConfig } from "../config.ts";
import { insecureDefaults, warnInsecureDefaults } from "./secure-defaults.ts";

const KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

describe("secure defaults in production", () => {
  it("names each open door of a bare production configuration, with its risk", () => {
    const found = insecureDefaults(loadConfig({ EVM_PRIVATE_KEY: KEY }));
    expect(found.map((f) => f.variable)).toEqual(["API_KEYS", "RATE_LIMIT_PER_MINUTE", "METRICS_API_KEY"]);
    expect(found[0]!.message).toMatch(/^API_KEYS is not set: anyone .* \/verify and \/settle .* pay gas/);
    expect(found[1]!.message).toMatch(/^RATE_LIMIT_PER_MINUTE is not set: .* no per-client limit/);
    expect(found[2]!.message).toMatch(/\/metrics is served on the API port without a key/);
  });

  it("is quiet once they are set, and in the local world", () => {
    expect(insecureDefaults(loadConfig({ EVM_PRIVATE_KEY: KEY, API_KEYS: "k1-abcdefgh", RATE_LIMIT_PER_MINUTE: "600", METRICS_API_KEY: "scrape-abcdefgh" }))).toEqual([]);
    expect(insecureDefaults(loadConfig({ EVM_PRIVATE_KEY: KEY, API_KEYS: "k1-abcdefgh", RATE_LIMIT_PER_MINUTE: "600", METRICS_PORT: "9464" }))).toEqual([]);
    expect(insecureDefaults(loadConfig({}))).toEqual([]);
  });

  it("logs each warning once, as a warning naming the variable", () => {
    const lines: { obj: object; msg: string }[] = [];
    warnInsecureDefaults(loadConfig({ EVM_PRIVATE_KEY: KEY, API_KEYS: "k1-abcdefgh" }), { warn: (obj, msg) => lines.push({ obj, msg }) });
    expect(lines).toHaveLength(2);
    expect(lines.map((l) => (l.obj as { variable: string }).variable)).toEqual(["RATE_LIMIT_PER_MINUTE", "METRICS_API_KEY"]);
  });
});
