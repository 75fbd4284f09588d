import { describe, expect, it } from "vitest";
import { AWS_NITRO_ROOT_PEM } from "@facilitator/tee";
import { ConfigProblem, describeSettings, parseTeeKey, resolveConfig, type ConfigFlags, type DevnetView } from "./config.ts";

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

  it("prefers flags to the environment, and reads nothing from devnet.json once a trusted setting is given", () => {
    const env = { AUDIT_RPC_URL: "http://env:1", AUDIT_AGGREGATOR_URL: "http://env-agg", X402_SETTLEMENT_CONTRACT: teeAddress };
    const c = resolveConfig({ rpc: "http://flag:2" }, env, devnet);
    expect([c.rpcUrl, c.aggregatorUrl, c.relayAddress]).toEqual(["http://flag:2", "http://env-agg", teeAddress]);
    expect(c.sources).toMatchObject({ rpc: "flag", aggregator: "env", relay: "env", attestationRoots: "default" });
    // Not one setting from the file: no chain id, no TEE key, no registry, no facilitator.
    expect([c.chainId, c.teeKeys, c.teeRegistry, c.facilitatorUrl, c.requireAttested]).toEqual([undefined, {}, undefined, undefined, false]);
    expect(c.devnetIgnored).toMatch(/devnet.json is not used: --rpc, AUDIT_RPC_URL, X402_SETTLEMENT_CONTRACT, AUDIT_AGGREGATOR_URL given explicitly/);
    // An aggregator that is not the devnet's is taken to be real Walrus.
    expect(c.blobIdCheck).toBe("walrus");
  });

  it("never completes an explicit configuration from devnet.json, and says why a setting is missing", () => {
    expect(() => resolveConfig({ relay }, {}, devnet)).toThrow(/no RPC URL: pass --rpc URL or set AUDIT_RPC_URL \(devnet.json is not used: --relay given explicitly/);
    expect(() => resolveConfig({}, { TEE_KEYS: `${teeId}=${teeAddress}` }, devnet)).toThrow(/no relay address[\s\S]*TEE_KEYS given explicitly/);
    // Settings that trust nothing (where to start, how to print) do not turn the file off.
    expect(resolveConfig({ fromBlock: "7" }, {}, devnet)).toMatchObject({ fromBlock: 7n, relayAddress: relay, sources: { fromBlock: "flag", relay: "devnet.json" } });
  });

  it("uses --tee-key flags instead of (not on top of) other sources", () => {
    const other = `0x${"cd".repeat(32)}`;
    const rest = { rpc: "http://x", relay, aggregator: "http://agg" };
    const c = resolveConfig({ ...rest, teeKey: [`${other}=${relay}`] }, { TEE_KEYS: `${teeId}=${teeAddress}` }, devnet);
    expect(c.teeKeys).toEqual({ [other]: relay });
    const fromEnv = resolveConfig(rest, { TEE_KEYS: ` ${other}=${relay} , ${teeId}=${teeAddress}` }, devnet);
    expect(fromEnv.teeKeys).toEqual({ [other]: relay, [teeId]: teeAddress });
    expect(fromEnv.sources.teeKeys).toBe("env");
  });

  it("takes the TEE registry and its root from devnet.json, requiring attestation by default where a registry is set", () => {
    const registry = "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0";
    const withRegistry: DevnetView = { ...devnet, teeRegistry: { address: registry, attestationRootPem: AWS_NITRO_ROOT_PEM } };
    const c = resolveConfig({}, {}, withRegistry);
    expect(c).toMatchObject({ teeRegistry: registry, requireAttested: true, attestationRoots: [AWS_NITRO_ROOT_PEM] });
    expect(c.sources).toMatchObject({ teeRegistry: "devnet.json", attestationRoots: "devnet.json", requireAttested: "default" });
    expect(resolveConfig({ requireAttested: "false" }, {}, withRegistry)).toMatchObject({ requireAttested: false, sources: { requireAttested: "flag" } });
    const explicit = resolveConfig({ rpc: "http://x", relay, aggregator: "http://agg", teeRegistry: registry, attestationRoot: ["root.pem"] }, {}, withRegistry, () => AWS_NITRO_ROOT_PEM);
    expect(explicit).toMatchObject({ teeRegistry: registry, requireAttested: true, sources: { teeRegistry: "flag", attestationRoots: "flag" } });
    expect(describeSettings(explicit).join("\n")).toMatch(/TEE registry 0x9fE4.* \(flag\); attestation roots: sha256 641a0321a3e244ef… \(flag\); attestation required: true \(default\)/);
  });

  it.each([
    ["nothing configured", {}, {}, undefined, /no RPC URL[\s\S]*no relay address[\s\S]*no aggregator URL/],
    ["a relay that is not an address", { relay: "0x1234" }, {}, devnet, /relay "0x1234" is not an address/],
    ["an unknown blob id check", { checkBlobId: "sha1" }, {}, devnet, /must be one of local, walrus, none/],
    ["a bad from block", { fromBlock: "-5" }, {}, devnet, /from block "-5" is not a block number/],
    ["a bad chain id", { chainId: "base" }, {}, devnet, /chain id "base" is not a positive integer/],
    ["a malformed TEE key", { teeKey: ["tee=0x1"] as string[] }, {}, devnet, /TEE key "tee=0x1" must be/],
    ["a malformed TEE_KEYS entry", {}, { TEE_KEYS: `${teeId}` }, devnet, /must be <32-byte hex teeId>=<address>/],
    ["a registry that is not an address", { teeRegistry: "0x12" }, {}, devnet, /TEE registry "0x12" is not an address/],
    ["attestation required without a registry", { requireAttested: "true" }, {}, devnet, /needs a TEE registry/],
    ["an unreadable attestation root", { attestationRoot: ["missing.pem"] }, {}, devnet, /attestation root missing.pem: cannot be read/],
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
