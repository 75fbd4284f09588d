/**
 * Secrets never reach a log line: the redaction paths of the server's logger (logger.ts) for the shapes
 * the code logs, and the scrubbing destination (ops/log-scrub.ts) for everything else, at any depth and
 * inside error messages.
 */
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../packages/server/src/config.ts";
import { createLogger } from "../packages/server/src/logger.ts";
import { configSecrets, scrubbingDestination } from "../packages/server/src/ops/log-scrub.ts";

// Made-up values shaped like the real ones (32-byte hex, 64-byte base58); none holds anything anywhere.
const EVM_KEYS = ["0x" + "a1".repeat(32), "0x" + "b2".repeat(32)];
const RELAYER_KEY = "0x" + "c3".repeat(32);
const SVM_KEY = "4".repeat(44) + "Zq".repeat(22);
const API_KEY = "api-key-d4d4d4d4";
const INFERENCE_KEY = "inference-key-e5e5e5";
const REDIS_PASSWORD = "redis-pass-f6f6f6";
const RPC_KEY = "rpc-provider-key-0707";

const config = loadConfig({
  EVM_PRIVATE_KEYS: EVM_KEYS.join(","),
  SVM_PRIVATE_KEY: SVM_KEY,
  RELAYER_PRIVATE_KEY: RELAYER_KEY,
  API_KEYS: API_KEY,
  INFERENCE_API_KEYS: INFERENCE_KEY,
  REDIS_URL: `redis://:${REDIS_PASSWORD}@127.0.0.1:6379`,
  BASE_SEPOLIA_RPC_URL: `https://base-sepolia.example.org/v2/${RPC_KEY}`,
});
const PRIVATE_KEYS = [...EVM_KEYS, RELAYER_KEY, SVM_KEY];
const ALL_SECRETS = [...PRIVATE_KEYS, API_KEY, INFERENCE_KEY, REDIS_PASSWORD, RPC_KEY];

function memoryLogger(scrub: boolean) {
  const lines: string[] = [];
  const memory = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  const logger = createLogger("trace", scrub ? scrubbingDestination(configSecrets(config), memory) : memory);
  return { logger, text: () => lines.join("") };
}

/** Objects as the code logs them: the configuration, a signer, request headers. */
const loggedShapes: [string, object][] = [
  ["the configuration itself", config],
  ["{config}", { config }],
  ["a signer", { signer: { address: "0x1", privateKey: EVM_KEYS[0] } }],
  ["a fee payer", { feePayer: { secretKey: SVM_KEY } }],
  ["request headers", { headers: { authorization: `Bearer ${API_KEY}`, "x-api-key": API_KEY } }],
];

describe("the logger's redaction paths", () => {
  it.each(loggedShapes)("keep private keys out of a line logging %s", (_label, obj) => {
    const { logger, text } = memoryLogger(false);
    logger.info(obj, "line");
    logger.error(obj, "line");
    expect(text()).toContain('"msg":"line"');
    for (const key of PRIVATE_KEYS) expect(text()).not.toContain(key);
    for (const key of EVM_KEYS) expect(text().toLowerCase()).not.toContain(key.slice(2));
  });

  it("keep the API key out of logged request headers", () => {
    const { logger, text } = memoryLogger(false);
    logger.info({ headers: { authorization: `Bearer ${API_KEY}`, "x-api-key": API_KEY } }, "request");
    expect(text()).not.toContain(API_KEY);
  });
});

describe("the scrubbing destination", () => {
  const anywhere: [string, object][] = [
    ...loggedShapes,
    ["the configuration two levels down", { services: { options: { config } } }],
    ["a key in an array", { keys: [EVM_KEYS[1], RELAYER_KEY] }],
    ["a key without its 0x, upper case", { raw: EVM_KEYS[0]!.slice(2).toUpperCase() }],
    ["an RPC error quoting its URL", { err: new Error(`HTTP request failed. URL: https://base-sepolia.example.org/v2/${RPC_KEY}`) }],
    ["a Redis error quoting its URL", { err: new Error(`cannot connect to redis://:${REDIS_PASSWORD}@127.0.0.1:6379`) }],
  ];

  it.each(anywhere)("keeps every secret out of a line logging %s", (_label, obj) => {
    const { logger, text } = memoryLogger(true);
    logger.info(obj, "line");
    expect(text()).toContain('"msg":"line"');
    for (const secret of ALL_SECRETS) expect(text().toLowerCase()).not.toContain(secret.toLowerCase());
  });

  it("leaves lines without secrets as they were", () => {
    const { logger, text } = memoryLogger(true);
    logger.info({ network: "base-sepolia", url: "https://base-sepolia.example.org/", status: 200 }, "request");
    expect(JSON.parse(text())).toMatchObject({ network: "base-sepolia", url: "https://base-sepolia.example.org/", status: 200, msg: "request" });
  });

  it("finds the secret values in the configuration", () => {
    const secrets = configSecrets(config);
    for (const s of ALL_SECRETS) expect(secrets.some((x) => x.includes(s))).toBe(true);
    expect(configSecrets({ evmKeys: [], networkOverrides: [{ name: "og-evm", rpcUrl: "https://ogevmdevnet.opengradient.ai/" }] })).toEqual([]);
  });

  it("finds a Redis Cluster URL's password on its own, as written and decoded", () => {
    const secrets = configSecrets({ redisUrl: "redis+cluster://app:cluster%2Fpass-42@10.0.0.1:7000,10.0.0.2:7000" });
    expect(secrets).toEqual(expect.arrayContaining(["cluster/pass-42", "cluster%2Fpass-42"]));
  });
});
