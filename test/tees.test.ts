/**
 * Trusted TEEs against the running facilitator, on anvil and the local Walrus service:
 *
 *   - registration (POST /tees/nonce, POST /tees): a document verified fully before anything is
 *     written; every refusal leaves the registry, Walrus and the relayer's nonce as they were;
 *   - heartbeats (POST /heartbeat) in the gateway's format relayed on chain, rate limited per TEE;
 *   - the gateway drop-in (POST /settle_data) refusing revoked measurements and, where liveness is
 *     required, TEEs without a fresh heartbeat, each with its reason;
 *   - several API processes on one Redis sharing the registrar's nonces and the heartbeat slots.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keccak256, stringToBytes, toHex, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import {
  encodeBase64,
  generateGatewayKey,
  heartbeatMessageHash,
  inferenceMessageHash,
  measurementOf,
  signRsaPss,
  TEE_REGISTRY_ABI,
  TeeType,
  TestAuthority,
  testPcrs,
  type GatewayKey,
} from "@facilitator/tee";
import { startRedis, type RedisServer } from "@facilitator/devnet";
import { listen, postJson } from "@facilitator/server/testing";
import { teeCli } from "../packages/server/src/tee-cli.ts";
import { OPERATOR_KEY, startTeeWorld, type TeeWorld } from "./helpers/tees.ts";
import type { FacilitatorFixture } from "./helpers/facilitator.ts";

let w: TeeWorld;
let fx: FacilitatorFixture;
const operator = { authorization: `Bearer ${OPERATOR_KEY}` };
const pem = (der: Uint8Array) => `-----BEGIN PUBLIC KEY-----\n${Buffer.from(der).toString("base64").match(/.{1,64}/g)!.join("\n")}\n-----END PUBLIC KEY-----\n`;
const IMAGE_B = "image-b";

beforeAll(async () => {
  w = await startTeeWorld();
  fx = await w.facilitator();
}, 120_000);

let redis: RedisServer | undefined;

afterAll(async () => {
  await w?.stop();
  await redis?.stop();
});

async function nonce(url = fx.url): Promise<Hex> {
  const res = await postJson(`${url}/tees/nonce`, {}, operator);
  expect(res.status).toBe(200);
  return ((await res.json()) as { nonce: Hex }).nonce;
}

/** What the operator posts for a gateway: its document (made with a fresh nonce) and its PEM key. */
async function registration(key: GatewayKey, opts: { authority?: TestAuthority; image?: string; bind?: Uint8Array; nonce?: Hex; url?: string } = {}) {
  const document = await (opts.authority ?? w.tees.authority).attest({
    signingKey: opts.bind ?? key.publicKey,
    nonce: opts.nonce ?? (await nonce(opts.url)),
    pcrs: testPcrs(opts.image ?? "local-world-enclave"),
  });
  return { attestationDocument: encodeBase64(document), signingKey: pem(key.publicKey), teeType: "aws-nitro" };
}

/** What a refusal must leave untouched: the registry entry, the blobs on Walrus, the relayer's nonce. */
async function footprint(teeId: Hex) {
  const relayer = privateKeyToAccount(w.relay.relayerKey).address;
  return {
    tee: await w.registry.getTee(teeId),
    blobs: readdirSync(join(w.walrusDir, "blobs")).length,
    nonce: await w.client.getTransactionCount({ address: relayer, blockTag: "pending" }),
  };
}

/** The gateway's /settle_data post of one inference, signed by `key` at `ts`. */
function settleData(key: GatewayKey, label: string, ts = BigInt(Math.floor(Date.now() / 1000))) {
  const request = JSON.stringify({ model: "m", messages: [{ role: "user", content: label }] });
  const response = `answer to ${label}`;
  const inputHash = keccak256(stringToBytes(request));
  const outputHash = keccak256(stringToBytes(response));
  const data = {
    tee_id: key.teeId,
    input_hash: inputHash.slice(2),
    output_hash: outputHash.slice(2),
    tee_signature: signRsaPss(key.privateKeyPem, inferenceMessageHash(inputHash, outputHash, ts)),
    tee_timestamp: Number(ts),
  };
  return { inputHash, outputHash, request, response, data };
}
const postSettleData = (url: string, type: string, data?: unknown, headers: Record<string, string> = {}) =>
  fetch(`${url}/settle_data`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-settlement-type": type, ...(data ? { "x-settlement-data": Buffer.from(JSON.stringify(data)).toString("base64") } : {}), ...headers },
    body: "{}",
  });

describe("registration", () => {
  it("is closed without the operator key", async () => {
    expect((await postJson(`${fx.url}/tees/nonce`, {})).status).toBe(401);
    expect((await postJson(`${fx.url}/tees`, {}, { authorization: "Bearer wrong-operator-key-0000" })).status).toBe(401);
  });

  it("verifies the document fully, stores it on Walrus and records the TEE on chain", async () => {
    const gw = generateGatewayKey();
    const body = { ...(await registration(gw)), endpoint: "https://gateway.example", paymentAddress: privateKeyToAccount(devKeyLike(9)).address };
    const res = await postJson(`${fx.url}/tees`, body, operator);
    const answer = (await res.json()) as Record<string, string>;
    expect(res.status, JSON.stringify(answer)).toBe(201);
    expect(answer).toMatchObject({ teeId: gw.teeId, scheme: "rsa-pss-sha256", measurement: w.tees.registry.measurement });
    const tee = (await w.registry.getTee(gw.teeId))!;
    expect(tee).toMatchObject({ signingKey: toHex(gw.publicKey), measurement: w.tees.registry.measurement, attestationHash: answer.attestationHash, attestationBlobId: answer.attestationBlobId, endpoint: "https://gateway.example" });
    const blob = new Uint8Array(await (await fetch(`${w.walrus.aggregatorUrl}/v1/blobs/${tee.attestationBlobId}`)).arrayBuffer());
    expect(keccak256(blob)).toBe(tee.attestationHash);
    expect(encodeBase64(blob)).toBe(body.attestationDocument);
  });

  it.each<[string, () => Promise<{ key: GatewayKey; body: Record<string, unknown> }>, string]>([
    ["a document chained to another root", async () => {
      const key = generateGatewayKey();
      return { key, body: await registration(key, { authority: await TestAuthority.create({ name: "elsewhere" }) }) };
    }, "attestation_untrusted_root"],
    ["a measurement nobody approved", async () => {
      const key = generateGatewayKey();
      return { key, body: await registration(key, { image: "never-approved" }) };
    }, "attestation_measurement_not_approved"],
    ["a document binding another key", async () => {
      const key = generateGatewayKey();
      return { key, body: await registration(key, { bind: generateGatewayKey().publicKey }) };
    }, "attestation_key_not_bound"],
    ["a nonce this registrar never issued", async () => {
      const key = generateGatewayKey();
      return { key, body: await registration(key, { nonce: toHex(new Uint8Array(20).fill(7)) }) };
    }, "attestation_nonce_unknown"],
    ["a tampered payload", async () => {
      const key = generateGatewayKey();
      const body = await registration(key);
      const doc = Buffer.from(body.attestationDocument, "base64");
      doc[doc.length - 200] ^= 1;
      return { key, body: { ...body, attestationDocument: doc.toString("base64") } };
    }, "attestation_signature_invalid"],
    ["a key registered already", async () => {
      const key = { ...generateGatewayKey(), teeId: w.tees.gateway.teeId } as GatewayKey;
      const registered = (await w.registry.getTee(w.tees.gateway.teeId))!;
      return { key, body: { ...(await registration(generateGatewayKey())), signingKey: registered.signingKey } };
    }, "tee_already_registered"],
    ["an unsupported TEE type", async () => {
      const key = generateGatewayKey();
      return { key, body: { ...(await registration(key)), teeType: "intel-tdx" } };
    }, "unsupported_tee_type"],
  ])("refuses %s and writes nothing", async (_name, make, reason) => {
    const { key, body } = await make();
    const before = await footprint(key.teeId);
    const res = await postJson(`${fx.url}/tees`, body, operator);
    expect(((await res.json()) as { error: string }).error).toBe(reason);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(await footprint(key.teeId)).toEqual(before);
  });

  it("takes a nonce once: the same document again is refused as reused", async () => {
    const gw = generateGatewayKey();
    const n = await nonce();
    const first = await registration(gw, { nonce: n });
    expect((await postJson(`${fx.url}/tees`, first, operator)).status).toBe(201);
    const other = generateGatewayKey();
    const again = await registration(other, { nonce: n });
    const res = await postJson(`${fx.url}/tees`, again, operator);
    expect(((await res.json()) as { error: string }).error).toBe("attestation_nonce_reused");
    expect(await w.registry.getTee(other.teeId)).toBeUndefined();
  });
});

describe("pnpm tee (the registration CLI)", () => {
  it("registers a gateway by asking it for its key and a document made with a fresh nonce", async () => {
    const gw = generateGatewayKey();
    // A stand-in for a tee-gateway behind nitriding: its key at /signing-key, documents at /enclave/attestation.
    const gateway = await listen(async (req, res) => {
      const url = new URL(req.url!, "http://gateway");
      if (url.pathname === "/signing-key") return void res.end(JSON.stringify({ public_key: pem(gw.publicKey), tee_id: gw.teeId }));
      const document = await w.tees.authority.attest({ signingKey: gw.publicKey, nonce: `0x${url.searchParams.get("nonce")}`, pcrs: testPcrs("local-world-enclave") });
      res.end(encodeBase64(document));
    });
    const out: string[] = [];
    const err: string[] = [];
    const io = { env: {}, fetch, readFile: () => "", out: (l: string) => out.push(l), err: (l: string) => err.push(l) };
    try {
      const code = await teeCli(["register", "--gateway", gateway.url, "--facilitator", fx.url, "--operator-key", OPERATOR_KEY], io);
      expect(code, err.join("\n")).toBe(0);
      expect(JSON.parse(out.join("\n"))).toMatchObject({ teeId: gw.teeId, scheme: "rsa-pss-sha256" });
      expect(await w.registry.getTee(gw.teeId)).toMatchObject({ endpoint: gateway.url });
      // Twice: refused with its reason, exit 1.
      expect(await teeCli(["register", "--gateway", gateway.url, "--facilitator", fx.url, "--operator-key", OPERATOR_KEY], io)).toBe(1);
      expect(err.at(-1)).toMatch(/^refused: tee_already_registered/);
      expect(await teeCli(["register", "--facilitator", fx.url, "--operator-key", OPERATOR_KEY], io)).toBe(2);
    } finally {
      await gateway.close();
    }
  });
});

describe("heartbeats", () => {
  const beat = (key: GatewayKey, ts: bigint, extra: Record<string, unknown> = {}) =>
    postJson(`${fx.url}/heartbeat`, { teeId: key.teeId, timestamp: String(ts), signature: signRsaPss(key.privateKeyPem, heartbeatMessageHash(key.teeId, ts)), ...extra });

  it("relays a gateway's heartbeat on chain, once per interval, and spends nothing on a forged one", async () => {
    const gw = generateGatewayKey();
    expect((await postJson(`${fx.url}/tees`, await registration(gw), operator)).status).toBe(201);
    const ts = (await w.client.getBlock()).timestamp;
    const impostor = { ...generateGatewayKey(), teeId: gw.teeId };
    const before = await footprint(gw.teeId);
    const forged = await beat(impostor, ts);
    expect(await forged.json()).toMatchObject({ success: false, error: "invalid_heartbeat_signature" });
    const wrongRegistry = await beat(gw, ts, { contractAddress: w.relay.address });
    expect(await wrongRegistry.json()).toMatchObject({ success: false, error: "heartbeat_contract_mismatch" });
    expect(await footprint(gw.teeId)).toEqual(before);

    const res = await beat(gw, ts, { contractAddress: w.tees.registry.address });
    const answer = (await res.json()) as { success: boolean; txHash: Hex };
    expect(res.status, JSON.stringify(answer)).toBe(200);
    expect(answer).toMatchObject({ success: true, teeId: gw.teeId, timestamp: String(ts), contract: w.tees.registry.address });
    expect((await w.registry.getTee(gw.teeId))!.lastHeartbeat).toBe(ts);
    const receipt = await w.client.getTransactionReceipt({ hash: answer.txHash });
    const [log] = await w.client.getContractEvents({ address: w.tees.registry.address, abi: TEE_REGISTRY_ABI, eventName: "HeartbeatRelayed", blockHash: receipt.blockHash });
    expect(log!.args).toMatchObject({ teeId: gw.teeId, timestamp: ts });

    const soon = await beat(gw, ts + 1n);
    expect(soon.status).toBe(429);
    expect(await soon.json()).toMatchObject({ success: false, error: "heartbeat_rate_limited" });
  });

  it("refuses heartbeats of TEEs the registry does not hold", async () => {
    const res = await beat(generateGatewayKey(), 1n);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ success: false, error: "unknown_tee" });
  });
});

describe("several API processes on one Redis (REDIS_URL)", () => {
  it("redeem a nonce another issued, once, and relay one heartbeat per TEE per interval between them", async () => {
    redis = await startRedis();
    const [a, b] = [await w.facilitator({ redisUrl: redis.url, runWorker: false }), await w.facilitator({ redisUrl: redis.url, runWorker: false })];
    const gw = generateGatewayKey();
    const n = await nonce(a.url);
    const registered = await postJson(`${b.url}/tees`, await registration(gw, { nonce: n }), operator);
    expect(registered.status, await registered.clone().text()).toBe(201);
    const again = await postJson(`${a.url}/tees`, await registration(generateGatewayKey(), { nonce: n }), operator);
    expect(((await again.json()) as { error: string }).error).toBe("attestation_nonce_reused");

    const ts = (await w.client.getBlock()).timestamp;
    const beat = (url: string, t: bigint) => postJson(`${url}/heartbeat`, { teeId: gw.teeId, timestamp: String(t), signature: signRsaPss(gw.privateKeyPem, heartbeatMessageHash(gw.teeId, t)) });
    expect((await beat(a.url, ts)).status).toBe(200);
    const other = await beat(b.url, ts + 1n);
    expect([other.status, ((await other.json()) as { error: string }).error]).toEqual([429, "heartbeat_rate_limited"]);
  });
});

describe("the gateway drop-in", () => {
  it("acknowledges private settlements and accepts a registered gateway's records from anyone", async () => {
    const priv = await postSettleData(fx.url, "private");
    expect(priv.status).toBe(202);
    expect(await priv.json()).toMatchObject({ settlementJob: null });
    const gw = gatewayOf(w);
    const one = settleData(gw, "accepted");
    const res = await postSettleData(fx.url, "batch", one.data);
    const answer = (await res.json()) as { settlementJob: { jobId: Hex; status: string } };
    expect(res.status, JSON.stringify(answer)).toBe(202);
    expect(answer.settlementJob).toMatchObject({ queue: "batch", status: "queued" });
    const individual = settleData(gw, "individual");
    const ind = await postSettleData(fx.url, "individual", { ...individual.data, input: individual.request, output: individual.response, timestamp: "1", eth_address: privateKeyToAccount(devKeyLike(3)).address });
    expect(ind.status).toBe(202);
    const wrongOutput = await postSettleData(fx.url, "individual", { ...individual.data, input: individual.request, output: "not what was signed", timestamp: "1", eth_address: privateKeyToAccount(devKeyLike(3)).address });
    expect(await wrongOutput.json()).toMatchObject({ error: "gateway_output_hash_mismatch" });
  });

  it("refuses the records of a TEE whose measurement was revoked, with its reason", async () => {
    const pcrs = testPcrs(IMAGE_B);
    await w.admin("approveMeasurement", [TeeType.AwsNitro, measurementOf(pcrs[0], pcrs[1], pcrs[2]).hash, IMAGE_B]);
    const gw = generateGatewayKey();
    expect((await postJson(`${fx.url}/tees`, await registration(gw, { image: IMAGE_B }), operator)).status).toBe(201);
    expect((await postSettleData(fx.url, "batch", settleData(gw, "before revocation").data)).status).toBe(202);
    await w.admin("revokeMeasurement", [TeeType.AwsNitro, measurementOf(pcrs[0], pcrs[1], pcrs[2]).hash]);
    const res = await postSettleData(fx.url, "batch", settleData(gw, "after revocation").data);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: "tee_measurement_revoked" });
  });

  it("refuses a TEE without a fresh heartbeat where liveness is required, and takes it again after one", async () => {
    const strict = await w.facilitator({ tee: { heartbeatMaxAgeSeconds: 2 } as never });
    const gw = generateGatewayKey();
    expect((await postJson(`${strict.url}/tees`, await registration(gw, { url: strict.url }), operator)).status).toBe(201);
    await new Promise((r) => setTimeout(r, 3_500));
    const stale = await postSettleData(strict.url, "batch", settleData(gw, "stale").data);
    expect(stale.status).toBe(400);
    expect(await stale.json()).toMatchObject({ error: "tee_heartbeat_stale" });

    const ts = BigInt(Math.floor(Date.now() / 1000));
    const beat = await postJson(`${strict.url}/heartbeat`, { teeId: gw.teeId, timestamp: String(ts), signature: signRsaPss(gw.privateKeyPem, heartbeatMessageHash(gw.teeId, ts)) });
    expect(beat.status).toBe(200);
    expect((await postSettleData(strict.url, "batch", settleData(gw, "fresh").data)).status).toBe(202);
  });
});

/** The local world's gateway TEE, as devnet.json hands it to clients. */
function gatewayOf(world: TeeWorld): GatewayKey {
  return { teeId: world.tees.gateway.teeId, privateKeyPem: world.tees.gateway.privateKeyPem, publicKey: new Uint8Array() };
}

function devKeyLike(i: number): Hex {
  return `0x${i.toString(16).padStart(64, "0")}`;
}
