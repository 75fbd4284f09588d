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
      SETTLEMENT_RELAY_FROM_BLOCK: "1234", SETTLEMENT_COMPACT_DUMP_ABOVE: "4096",
    });
    expect(c).toMatchObject({
      mode: "production", port: 3000, redisUrl: "redis://10.0.0.5:6380", batchSize: 50, batchTimeoutMs: 1000, compactDumpAbove: 4096,
      evmKeys: [KEY], svmKeys: [SVM_KEY], relay: { network: "og-evm", address: "0x00000000000000000000000000000000000000aa" },
      walrus: { publisherUrl: "http://localhost:9002/v1/blobs", aggregatorUrl: "http://localhost:9002" }, relayFromBlock: 1234n,
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
    ["no key at all", { REDIS_URL: "redis://x" }, /^EVM_PRIVATE_KEY\(S\), SVM_PRIVATE_KEY\(S\): no facilitator key/],
    ["a malformed EVM key", { EVM_PRIVATE_KEY: "0x1234" }, /^EVM_PRIVATE_KEY: key #1 is not 32-byte hex/],
    ["a malformed EVM key in a list", { EVM_PRIVATE_KEYS: `${KEY},0x12` }, /^EVM_PRIVATE_KEYS: key #2 is not 32-byte hex/],
    ["a malformed Solana key", { SVM_PRIVATE_KEY: "not-base58!" }, /^SVM_PRIVATE_KEY: key #1/],
    ["a port that is not a number", { EVM_PRIVATE_KEY: KEY, PORT: "eighty" }, /^PORT: must be an integer from 0 to 65535, got "eighty"/],
    ["a port out of range", { EVM_PRIVATE_KEY: KEY, PORT: "70000" }, /^PORT: must be an integer from 0 to 65535/],
    ["a receipt bound above the clients' timeout", { EVM_PRIVATE_KEY: KEY, SETTLE_RECEIPT_TIMEOUT_MS: "95000" }, /^SETTLE_RECEIPT_TIMEOUT_MS: must stay below the official clients' 90 s/],
    ["a settle lease under a second", { EVM_PRIVATE_KEY: KEY, SETTLE_LEASE_MS: "200" }, /^SETTLE_LEASE_MS: must be an integer >= 1000, got "200"/],
    ["a relay address that is not one", { EVM_PRIVATE_KEY: KEY, X402_SETTLEMENT_CONTRACT: "0xabc" }, /^X402_SETTLEMENT_CONTRACT: not an address/],
    ["bad network overrides", { EVM_PRIVATE_KEY: KEY, NETWORK_OVERRIDES: "{" }, /^NETWORK_OVERRIDES: must be a JSON array/],
    ["network overrides that are not an array", { EVM_PRIVATE_KEY: KEY, NETWORK_OVERRIDES: "{}" }, /^NETWORK_OVERRIDES: must be a JSON array .*, got object/],
    ["a network override without a name", { EVM_PRIVATE_KEY: KEY, NETWORK_OVERRIDES: '[{"rpcUrl":"http://x"}]' }, /^NETWORK_OVERRIDES: entry #1 has no name/],
    ["a new network without its chain id", { EVM_PRIVATE_KEY: KEY, NETWORK_OVERRIDES: '[{"name":"my-l2"}]' }, /^NETWORK_OVERRIDES: new network my-l2 needs chainId/],
    ["an EVM asset with a transfer method we cannot settle", { EVM_PRIVATE_KEY: KEY, NETWORKS: "base-sepolia", NETWORK_OVERRIDES: '[{"name":"base-sepolia","asset":{"transferMethod":"spl"}}]' }, /^NETWORK_OVERRIDES: network base-sepolia has asset.transferMethod "spl" \(valid: eip3009, permit\)/],
    ["an unknown network", { EVM_PRIVATE_KEY: KEY, NETWORKS: "base-sepolia,base-sepolla" }, /^NETWORKS: unknown network "base-sepolla" \(valid: base, base-sepolia, .*solana-devnet/],
    ["an EVM network without an EVM key", { SVM_PRIVATE_KEY: SVM_KEY, NETWORKS: "base" }, /^NETWORKS: base is an EVM network, but no EVM_PRIVATE_KEY\(S\)/],
    ["a Solana network without a Solana key", { EVM_PRIVATE_KEY: KEY, NETWORKS: "solana" }, /^NETWORKS: solana is a Solana network, but no SVM_PRIVATE_KEY\(S\)/],
    ["a relay on a Solana network", { EVM_PRIVATE_KEY: KEY, X402_SETTLEMENT_CONTRACT: "0x00000000000000000000000000000000000000aa", SETTLEMENT_NETWORK: "solana-devnet" }, /^SETTLEMENT_NETWORK: "solana-devnet" is not an EVM network \(valid: base, /],
    ["an RPC variable for no network", { EVM_PRIVATE_KEY: KEY, BASE_SEPOLA_RPC_URL: "http://rpc" }, /^BASE_SEPOLA_RPC_URL: no network is named base-sepola \(.*one of: base, base-sepolia/],
    ["an RPC URL that is not one", { EVM_PRIVATE_KEY: KEY, BASE_RPC_URL: "base.example/key" }, /^BASE_RPC_URL: not a http:\/\/ or https:\/\/ URL \(value not shown\)/],
    ["a Redis URL that is not one", { EVM_PRIVATE_KEY: KEY, REDIS_URL: "localhost:6379" }, /^REDIS_URL: not a redis:\/\/, rediss:\/\/, redis\+cluster:\/\/ or rediss\+cluster:\/\/ URL \(value not shown\)/],
    ["several Redis hosts without the cluster scheme", { EVM_PRIVATE_KEY: KEY, REDIS_URL: "redis://:pw@h1:7000,h2:7001" }, /^REDIS_URL: several hosts: a cluster is written redis\+cluster:\/\/host:port,host:port \(value not shown\)/],
    ["a cluster with a database number", { EVM_PRIVATE_KEY: KEY, REDIS_URL: "redis+cluster://h1:7000,h2:7001/2" }, /^REDIS_URL: a Redis Cluster has only database 0/],
    ["replicas to wait for without Redis", { EVM_PRIVATE_KEY: KEY, REDIS_WAIT_REPLICAS: "1" }, /^REDIS_WAIT_REPLICAS: waits for Redis replicas, but no REDIS_URL is set/],
    ["queue partitions without Redis", { EVM_PRIVATE_KEY: KEY, SETTLEMENT_QUEUE_PARTITIONS: "3" }, /^SETTLEMENT_QUEUE_PARTITIONS: partitions the Redis queue, but no REDIS_URL/],
    ["no batch in flight", { EVM_PRIVATE_KEY: KEY, SETTLEMENT_BATCHES_IN_FLIGHT: "0" }, /^SETTLEMENT_BATCHES_IN_FLIGHT: must be an integer from 1 to 64, got "0"/],
    ["a Redis port that is not one", { EVM_PRIVATE_KEY: KEY, REDIS_HOST: "10.0.0.5", REDIS_PORT: "six" }, /^REDIS_PORT: must be an integer from 1 to 65535/],
    ["an unknown log level", { LOG_LEVEL: "verbose" }, /^LOG_LEVEL: unknown level "verbose" \(valid: fatal, error, warn, info, debug, trace, silent\)/],
    ["a switch that is neither true nor false", { EVM_PRIVATE_KEY: KEY, REQUIRE_TEE_SIGNATURE: "yes" }, /^REQUIRE_TEE_SIGNATURE: must be true or false, got "yes"/],
    ["a negative retention", { EVM_PRIVATE_KEY: KEY, LEDGER_RETENTION_DAYS: "-1" }, /^LEDGER_RETENTION_DAYS: must be an integer >= 0/],
    ["a bad TEE key entry", { EVM_PRIVATE_KEY: KEY, TEE_KEYS: "tee=0x1" }, /^TEE_KEYS: entry "tee=0x1" must be/],
    ["a TEE registry that is not an address", { EVM_PRIVATE_KEY: KEY, X402_SETTLEMENT_CONTRACT: "0x00000000000000000000000000000000000000aa", SETTLEMENT_RELAY_FROM_BLOCK: "0", TEE_REGISTRY_ADDRESS: "0x12" }, /^TEE_REGISTRY_ADDRESS: not an address, got "0x12"/],
    ["a TEE registry without the relay", { EVM_PRIVATE_KEY: KEY, TEE_REGISTRY_ADDRESS: "0x00000000000000000000000000000000000000bb" }, /^TEE_REGISTRY_ADDRESS: needs X402_SETTLEMENT_CONTRACT/],
    ["an unreadable attestation root", { EVM_PRIVATE_KEY: KEY, TEE_ATTESTATION_ROOTS: "/nonexistent/root.pem" }, /^TEE_ATTESTATION_ROOTS: \/nonexistent\/root.pem cannot be read/],
    ["a short operator key", { EVM_PRIVATE_KEY: KEY, OPERATOR_API_KEY: "short" }, /^OPERATOR_API_KEY: shorter than 16 characters \(value not shown\)/],
    ["a heartbeat gas cap below a transfer", { EVM_PRIVATE_KEY: KEY, HEARTBEAT_MAX_GAS: "100" }, /^HEARTBEAT_MAX_GAS: must be a whole number >= 21000/],
    ["an unreadable key file", { EVM_PRIVATE_KEYS_FILE: "/nonexistent/keys" }, /^EVM_PRIVATE_KEYS_FILE: points at \/nonexistent\/keys, which cannot be read/],
    ["a relay and Walrus without the relay's start block", { EVM_PRIVATE_KEY: KEY, X402_SETTLEMENT_CONTRACT: "0x00000000000000000000000000000000000000aa", WALRUS_PUBLISHER_URL: "http://w" }, /^SETTLEMENT_RELAY_FROM_BLOCK: required with X402_SETTLEMENT_CONTRACT and WALRUS_PUBLISHER_URL/],
    ["a start block that is not a block number", { EVM_PRIVATE_KEY: KEY, SETTLEMENT_RELAY_FROM_BLOCK: "-3" }, /^SETTLEMENT_RELAY_FROM_BLOCK: must be a block number \(a whole number >= 0\), got "-3"/],
    ["TRUST_PROXY=true", { EVM_PRIVATE_KEY: KEY, TRUST_PROXY: "true" }, /^TRUST_PROXY: "true" would believe any X-Forwarded-For/],
    ["a TRUST_PROXY entry that is no address", { EVM_PRIVATE_KEY: KEY, TRUST_PROXY: "10.0.0.0/8,balancer" }, /^TRUST_PROXY: "balancer" is not an IP address, CIDR or one of loopback/],
    ["TRUST_PROXY=true in four halves", { EVM_PRIVATE_KEY: KEY, TRUST_PROXY: "0.0.0.0/1,128.0.0.0/1,::/1,8000::/1" }, /^TRUST_PROXY: "0.0.0.0\/1", "128.0.0.0\/1", "::\/1", "8000::\/1" trust far more than a load balancer's network/],
    ["TRUST_PROXY=0.0.0.0/0", { EVM_PRIVATE_KEY: KEY, TRUST_PROXY: "0.0.0.0/0" }, /^TRUST_PROXY: "0.0.0.0\/0" trusts far more than a load balancer's network/],
    ["a TRUST_PROXY IPv6 range shorter than /16", { EVM_PRIVATE_KEY: KEY, TRUST_PROXY: "10.0.0.0/8, 2000::/3" }, /^TRUST_PROXY: "2000::\/3" trusts far more/],
    ["a TRUST_PROXY IPv4 range shorter than /8", { EVM_PRIVATE_KEY: KEY, TRUST_PROXY: "96.0.0.0/3" }, /^TRUST_PROXY: "96.0.0.0\/3" trusts far more/],
    ["a TRUST_PROXY range of every IPv4-mapped address", { EVM_PRIVATE_KEY: KEY, TRUST_PROXY: "::ffff:0.0.0.0/96" }, /^TRUST_PROXY: "::ffff:0.0.0.0\/96" trusts far more/],
    ["a TRUST_PROXY address express cannot parse", { EVM_PRIVATE_KEY: KEY, TRUST_PROXY: "::1.2.3.4" }, /^TRUST_PROXY: express does not accept it \(invalid IP address: ::1.2.3.4\)$/],
    ["a metrics port that is not one", { EVM_PRIVATE_KEY: KEY, METRICS_PORT: "metrics" }, /^METRICS_PORT: must be an integer from 0 to 65535/],
    ["a metrics port equal to the API port", { EVM_PRIVATE_KEY: KEY, PORT: "3000", METRICS_PORT: "3000" }, /^METRICS_PORT: 3000 is also PORT/],
    ["an extra asset without its address", { EVM_PRIVATE_KEY: KEY, NETWORK_OVERRIDES: '[{"name":"base","extraAssets":[{"decimals":6}]}]' }, /^NETWORK_OVERRIDES: network base: extraAssets #1 needs address and decimals/],
    ["a gas cap below a plain transfer", { EVM_PRIVATE_KEY: KEY, SETTLE_MAX_GAS: "20000" }, /^SETTLE_MAX_GAS: must be a whole number of gas of at least 21000, got "20000"/],
    ["a fee cap that is not a number", { EVM_PRIVATE_KEY: KEY, SETTLE_MAX_FEE_PER_GAS_WEI: "1gwei" }, /^SETTLE_MAX_FEE_PER_GAS_WEI: must be a whole number of wei/],
    ["a negative explorer rate limit", { EVM_PRIVATE_KEY: KEY, EXPLORER_RATE_LIMIT_PER_MINUTE: "-1" }, /^EXPLORER_RATE_LIMIT_PER_MINUTE: must be an integer >= 0/],
  ])("refuses %s with one line naming the variable", (_name, env, message) => {
    const problems = problemsOf(env as Record<string, string>);
    expect(problems.find((p) => message.test(p)), problems.join("\n")).toBeDefined();
    for (const p of problems) expect(p).not.toContain("\n");
  });

  it("reads a Redis Cluster, the replicas its writes wait for, the queue's partitions and the batches in flight", () => {
    const c = loadConfig({
      EVM_PRIVATE_KEY: KEY, REDIS_URL: "redis+cluster://:pw-of-the-cluster@10.0.0.1:7000,10.0.0.2:7000", REDIS_WAIT_REPLICAS: "1",
      SETTLEMENT_QUEUE_PARTITIONS: "3", SETTLEMENT_BATCHES_IN_FLIGHT: "4",
    });
    expect(c).toMatchObject({ redisUrl: "redis+cluster://:pw-of-the-cluster@10.0.0.1:7000,10.0.0.2:7000", redisWaitReplicas: 1, queuePartitions: 3, batchesInFlight: 4 });
    expect(loadConfig({ EVM_PRIVATE_KEY: KEY })).toMatchObject({ redisWaitReplicas: 0, queuePartitions: 1, batchesInFlight: undefined });
  });

  it("needs no relay start block in the local world or without the explorer, and reads one when given", () => {
    expect(loadConfig({}).relayFromBlock).toBeUndefined();
    expect(loadConfig({ EVM_PRIVATE_KEY: KEY, X402_SETTLEMENT_CONTRACT: "0x00000000000000000000000000000000000000aa", SETTLEMENT_NETWORK: "base" }).relayFromBlock).toBeUndefined();
    const c = loadConfig({ EVM_PRIVATE_KEY: KEY, X402_SETTLEMENT_CONTRACT: "0x00000000000000000000000000000000000000aa", SETTLEMENT_NETWORK: "base", WALRUS_PUBLISHER_URL: "http://w", SETTLEMENT_RELAY_FROM_BLOCK: "0" });
    expect(c.relayFromBlock).toBe(0n);
  });

  it("trusts no proxy, serves /metrics on the API port without a key and limits the explorer to 120 a minute unless told", () => {
    expect(loadConfig({ EVM_PRIVATE_KEY: KEY })).toMatchObject({ trustProxy: false, metricsPort: undefined, metricsApiKey: undefined, explorerRateLimitPerMinute: 120 });
    const c = loadConfig({ EVM_PRIVATE_KEY: KEY, TRUST_PROXY: "10.0.0.0/8, loopback", METRICS_PORT: "9464", METRICS_API_KEY: "scrape-key-123456", EXPLORER_RATE_LIMIT_PER_MINUTE: "30" });
    expect(c).toMatchObject({ trustProxy: ["10.0.0.0/8", "loopback"], metricsPort: 9464, metricsApiKey: "scrape-key-123456", explorerRateLimitPerMinute: 30 });
    expect(loadConfig({ EVM_PRIVATE_KEY: KEY, TRUST_PROXY: "2" }).trustProxy).toBe(2);
  });

  it("keeps finished ledger entries 7 days unless told, and for good with 0", () => {
    expect(loadConfig({}).ledgerRetentionMs).toBe(7 * 24 * 3_600_000);
    expect(loadConfig({ LEDGER_RETENTION_DAYS: "30" }).ledgerRetentionMs).toBe(30 * 24 * 3_600_000);
    expect(loadConfig({ LEDGER_RETENTION_DAYS: "0" }).ledgerRetentionMs).toBeUndefined();
  });

  it("leaves REQUIRE_TEE_SIGNATURE to its default (required once TEE_KEYS is set) unless told, and refuses true without TEE keys", () => {
    const TEE = `0x${"11".repeat(32)}=0x00000000000000000000000000000000000000aa`;
    expect(loadConfig({}).requireTeeSignature).toBeUndefined();
    expect(loadConfig({ TEE_KEYS: TEE, REQUIRE_TEE_SIGNATURE: "" }).requireTeeSignature).toBeUndefined();
    expect(loadConfig({ TEE_KEYS: TEE, REQUIRE_TEE_SIGNATURE: "false" }).requireTeeSignature).toBe(false);
    expect(loadConfig({ TEE_KEYS: TEE, REQUIRE_TEE_SIGNATURE: "true" }).requireTeeSignature).toBe(true);
    expect(problemsOf({ EVM_PRIVATE_KEY: KEY, REQUIRE_TEE_SIGNATURE: "true" })).toContainEqual(expect.stringMatching(/^REQUIRE_TEE_SIGNATURE: true, but neither TEE_KEYS nor TEE_REGISTRY_ADDRESS names a TEE/));
  });

  it("accepts a network by its CAIP-2 id, and one NETWORK_OVERRIDES defines, with its RPC variable", () => {
    const myL2 = { name: "my-l2", chainId: 777, rpcUrl: "https://rpc.my-l2.example", asset: { address: "0x00000000000000000000000000000000000000aa", decimals: 6, name: "USDC", version: "2" } };
    const c = loadConfig({
      EVM_PRIVATE_KEY: KEY,
      NETWORKS: "eip155:84532,my-l2",
      NETWORK_OVERRIDES: JSON.stringify([myL2]),
      MY_L2_RPC_URL: "https://other.my-l2.example/key",
    });
    expect(c.networks).toEqual(["eip155:84532", "my-l2"]);
    expect(c.networkOverrides).toEqual([myL2, { name: "my-l2", rpcUrl: "https://other.my-l2.example/key" }]);
  });

  it("runs the bazaar catalogue for 30 days of freshness and 100 routes per payee and payer unless told, and names a bad value", () => {
    expect(loadConfig({}).bazaar).toEqual({ enabled: true, ttlMs: 30 * 24 * 3600 * 1000, maxRoutesPerPayTo: 100, maxRoutesPerPayer: 100, maxResources: 10_000 });
    const c = loadConfig({ BAZAAR_ENABLED: "false", BAZAAR_TTL_SECONDS: "3600", BAZAAR_MAX_ROUTES_PER_PAYTO: "5", BAZAAR_MAX_ROUTES_PER_PAYER: "7", BAZAAR_MAX_RESOURCES: "50" });
    expect(c.bazaar).toEqual({ enabled: false, ttlMs: 3_600_000, maxRoutesPerPayTo: 5, maxRoutesPerPayer: 7, maxResources: 50 });
    expect(problemsOf({ BAZAAR_TTL_SECONDS: "10", BAZAAR_MAX_RESOURCES: "0" })).toEqual([
      'BAZAAR_TTL_SECONDS: must be an integer >= 60, got "10"',
      'BAZAAR_MAX_RESOURCES: must be an integer >= 1, got "0"',
    ]);
  });

  it("reports every problem at once and never prints a key", () => {
    const problems = problemsOf({ EVM_PRIVATE_KEY: `${KEY.slice(0, 60)}`, PORT: "x" });
    expect(problems.length).toBe(2);
    expect(problems.join("\n")).not.toContain(KEY.slice(2, 60));
  });
});
