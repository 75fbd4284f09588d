import { describe, expect, it } from "vitest";
import { ConfigProblem, parseTeeKey, resolveConfig, type ConfigFlags, type DevnetView } from "./config.ts";

const relay = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
const teeId = `0x${"ab".repeat(32)}`;
const teeAddress = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const devnet: DevnetView = {
  facilitatorUrl: "http://127.0.0.1:4020",
  networks: { "base-sepolia": { rpcUrl: "http://127.0.0.1:8545", chainId: 84532 } },
  settlementRelay: { network: "base-sepolia", address: relay },
  walrus: { aggregatorUrl: "http://127.0.0.1:31416" },
  tee: { teeId, address: teeAddress },
};

describe("resolveConfig", () => {
  it("takes everything from devnet.json, with local blob ids for the local aggregator", () => {
    const c = resolveConfig({}, {}, devnet);
    expect(c).toMatchObject({
      rpcUrl: "http://127.0.0.1:8545",
      chainId: 84532,
      relayAddress: relay,
      aggregatorUrl: "http://127.0.0.1:31416",
      blobIdCheck: "local",
      fromBlock: 0n,
      teeKeys: { [teeId]: teeAddress },
      facilitatorUrl: "http://127.0.0.1:4020",
    });
  });

  it("prefers flags to the environment and the environment to devnet.json", () => {
    const env = { AUDIT_RPC_URL: "http://env:1", AUDIT_AGGREGATOR_URL: "http://env-agg", X402_SETTLEMENT_CONTRACT: teeAddress };
    const c = resolveConfig({ rpc: "http://flag:2" }, env, devnet);
    expect([c.rpcUrl, c.aggregatorUrl, c.relayAddress]).toEqual(["http://flag:2", "http://env-agg", teeAddress]);
    expect(c.sources).toMatchObject({ rpc: "flag", aggregator: "env", relay: "env" });
    // An aggregator that is not the devnet's is taken to be real Walrus.
    expect(c.blobIdCheck).toBe("walrus");
  });

  it("uses --tee-key flags instead of (not on top of) other sources", () => {
    const other = `0x${"cd".repeat(32)}`;
    const c = resolveConfig({ teeKey: [`${other}=${relay}`] }, { TEE_KEYS: `${teeId}=${teeAddress}` }, devnet);
    expect(c.teeKeys).toEqual({ [other]: relay });
    const fromEnv = resolveConfig({}, { TEE_KEYS: ` ${other}=${relay} , ${teeId}=${teeAddress}` }, devnet);
    expect(fromEnv.teeKeys).toEqual({ [other]: relay, [teeId]: teeAddress });
    expect(fromEnv.sources.teeKeys).toBe("env");
  });

  it.each([
    ["nothing configured", {}, {}, undefined, /no RPC URL[\s\S]*no relay address[\s\S]*no aggregator URL/],
    ["a relay that is not an address", { relay: "0x1234" }, {}, devnet, /relay "0x1234" is not an address/],
    ["an unknown blob id check", { checkBlobId: "sha1" }, {}, devnet, /must be one of local, walrus, none/],
    ["a bad from block", { fromBlock: "-5" }, {}, devnet, /from block "-5" is not a block number/],
    ["a bad chain id", { chainId: "base" }, {}, devnet, /chain id "base" is not a positive integer/],
    ["a malformed TEE key", { teeKey: ["tee=0x1"] as string[] }, {}, devnet, /TEE key "tee=0x1" must be/],
    ["a malformed TEE_KEYS entry", {}, { TEE_KEYS: `${teeId}` }, devnet, /must be <32-byte hex teeId>=<address>/],
  ] as [string, ConfigFlags, Record<string, string>, DevnetView | undefined, RegExp][])("reports %s", (_name, flags, env, dv, error) => {
    expect(() => resolveConfig(flags, env, dv)).toThrow(ConfigProblem);
    expect(() => resolveConfig(flags, env, dv)).toThrow(error);
  });
});

describe("parseTeeKey", () => {
  it.each([
    [`${teeId}=${teeAddress}`, { teeId, address: teeAddress }],
    [`${teeId.toUpperCase().replace("0X", "0x")}=${teeAddress.toLowerCase()}`, { teeId, address: teeAddress }],
    [`${teeId}`, /must be/],
    [`${teeId}=${teeAddress}=x`, /must be/],
    [`0x12=${teeAddress}`, /must be/],
  ] as const)("%s", (pair, expected) => {
    const parsed = parseTeeKey(pair);
    if (expected instanceof RegExp) expect(parsed).toMatch(expected);
    else expect(parsed).toEqual(expected);
  });
});
