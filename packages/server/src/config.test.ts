import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, isProduction, loadConfig } from "./config.ts";

const KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const SVM_KEY = "4Z7cXSyeFR8wNGMVXUE1TweKCdoJsCmaZ2bd9ciMdPnuHbYj1vFhBtQ9qXNRvcjx1hFdkw4CJs8dF3fJqAAhcrdh";

const problemsOf = (env: Record<string, string>): string[] => {
  try {
    loadConfig(env);
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
};

describe("loadConfig", () => {
  it("with nothing set, runs the embedded local world", () => {
    const c = loadConfig({});
    expect(c.mode).toBe("embedded");
    expect(c.host).toBe("127.0.0.1");
  });

  it.each(["EVM_PRIVATE_KEY", "REDIS_URL", "NETWORKS", "WALRUS_PUBLISHER_URL", "X402_SETTLEMENT_CONTRACT"])(
    "%s alone means production, never the local world",
    (name) => expect(isProduction({ [name]: "x" })).toBe(true),
  );

  it("reads the earlier facilitator's variable names", () => {
    const c = loadConfig({
      EVM_PRIVATE_KEY: KEY, SVM_PRIVATE_KEY: SVM_KEY, PORT: "3000", REDIS_HOST: "10.0.0.5", REDIS_PORT: "6380",
      SETTLEMENT_BATCH_SIZE: "50", SETTLEMENT_BATCH_TIMEOUT: "1000", WALRUS_PUBLISHER_URL: "http://localhost:9002/v1/blobs",
      SVM_RPC_URL: "http://sol", X402_SETTLEMENT_CONTRACT: "0x00000000000000000000000000000000000000aa", NETWORKS: "og-evm,solana-devnet",
    });
    expect(c).toMatchObject({
      mode: "production", port: 3000, redisUrl: "redis://10.0.0.5:6380", batchSize: 50, batchTimeoutMs: 1000,
      evmKeys: [KEY], svmKeys: [SVM_KEY], relay: { network: "og-evm", address: "0x00000000000000000000000000000000000000aa" },
      walrus: { publisherUrl: "http://localhost:9002/v1/blobs", aggregatorUrl: "http://localhost:9002" },
    });
    expect(c.networkOverrides).toContainEqual({ name: "solana-devnet", rpcUrl: "http://sol" });
  });

  it("reads keys from files", () => {
    const dir = mkdtempSync(join(tmpdir(), "keys-"));
    writeFileSync(join(dir, "evm"), `${KEY}\n`);
    expect(loadConfig({ EVM_PRIVATE_KEYS_FILE: join(dir, "evm") }).evmKeys).toEqual([KEY]);
  });

  it("maps <NAME>_RPC_URL onto the network", () => {
    const c = loadConfig({ EVM_PRIVATE_KEY: KEY, BASE_SEPOLIA_RPC_URL: "http://rpc" });
    expect(c.networkOverrides).toContainEqual({ name: "base-sepolia", rpcUrl: "http://rpc" });
  });

  it.each([
    ["no key at all", { REDIS_URL: "redis://x" }, /no facilitator key/],
    ["a malformed EVM key", { EVM_PRIVATE_KEY: "0x1234" }, /EVM private key #1 is not 32-byte hex/],
    ["a malformed Solana key", { SVM_PRIVATE_KEY: "not-base58!" }, /SVM private key #1/],
    ["a port that is not a number", { EVM_PRIVATE_KEY: KEY, PORT: "eighty" }, /PORT must be an integer/],
    ["a receipt bound above the clients' timeout", { EVM_PRIVATE_KEY: KEY, SETTLE_RECEIPT_TIMEOUT_MS: "95000" }, /below the official clients' 90 s/],
    ["a relay address that is not one", { EVM_PRIVATE_KEY: KEY, X402_SETTLEMENT_CONTRACT: "0xabc" }, /X402_SETTLEMENT_CONTRACT is not an address/],
    ["bad network overrides", { EVM_PRIVATE_KEY: KEY, NETWORK_OVERRIDES: "{" }, /NETWORK_OVERRIDES must be a JSON array/],
    ["a bad TEE key entry", { EVM_PRIVATE_KEY: KEY, TEE_KEYS: "tee=0x1" }, /TEE_KEYS entry/],
    ["an unreadable key file", { EVM_PRIVATE_KEYS_FILE: "/nonexistent/keys" }, /cannot be read/],
  ])("refuses %s with a clear message", (_name, env, message) => {
    expect(problemsOf(env as Record<string, string>).join("\n")).toMatch(message);
  });

  it("reports every problem at once and never prints a key", () => {
    const problems = problemsOf({ EVM_PRIVATE_KEY: `${KEY.slice(0, 60)}`, PORT: "x" });
    expect(problems.length).toBe(2);
    expect(problems.join("\n")).not.toContain(KEY.slice(2, 60));
  });
});
