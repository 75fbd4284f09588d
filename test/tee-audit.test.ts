/**
 * The auditor decides trust without us: with an RPC, the Walrus aggregator, the TEERegistry and the
 * attestation root alone. A record the tee-gateway signed, posted to /settle_data exactly as the gateway
 * posts it, comes back VERIFIED and attested with every TEE check passing; records anchored behind the
 * door's back (a forger holding the relayer's and registrar's roles) come back NOT VERIFIED, naming
 * the check that fails: a TEE never registered, registered after the anchor, a revoked measurement, an
 * attestation blob that is not the registered one, a signature under another key.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keccak256, stringToBytes, toHex, type Hex } from "viem";
import { createAuditor, type AuditConfig, type Auditor, type AuditReport } from "@facilitator/auditor";
import { signTeeRecord, type InferenceRecord } from "@facilitator/inference";
import { postJson } from "@facilitator/server/testing";
import {
  encodeBase64,
  generateGatewayKey,
  inferenceMessageHash,
  KeyScheme,
  measurementOf,
  signRsaPss,
  TeeType,
  testPcrs,
  type GatewayKey,
} from "@facilitator/tee";
import { INFERENCE_KEY, OPERATOR_KEY, startTeeWorld, type TeeWorld } from "./helpers/tees.ts";
import type { FacilitatorFixture } from "./helpers/facilitator.ts";

let w: TeeWorld;
let fx: FacilitatorFixture;
let auditor: Auditor;
let config: AuditConfig;
const TRUST = ["tee-registered", "tee-attestation", "tee-measurement", "tee-signature"];

beforeAll(async () => {
  w = await startTeeWorld();
  fx = await w.facilitator();
  config = {
    rpcUrl: w.rpcUrl,
    chainId: w.chainId,
    relayAddress: w.relay.address,
    aggregatorUrl: w.walrus.aggregatorUrl,
    blobIdCheck: "local",
    teeRegistry: w.tees.registry.address,
    attestationRoots: [w.tees.registry.attestationRootPem],
  };
  auditor = await createAuditor(config);
}, 120_000);

afterAll(async () => {
  await w?.stop();
});

let n = 0;
/** A gateway record as it is anchored (hex signature), signed by `signer` in the name of `teeId`. */
function gatewayRecord(signer: GatewayKey, teeId: Hex = signer.teeId): InferenceRecord {
  const inputHash = keccak256(toHex(`input ${++n}`));
  const outputHash = keccak256(toHex(`output ${n}`));
  const ts = BigInt(1_700_000_000 + n);
  const sig = signRsaPss(signer.privateKeyPem, inferenceMessageHash(inputHash, outputHash, ts));
  return { inputHash, outputHash, settlementType: "settle-batch", teeId, teeTimestamp: String(ts), teeSignature: toHex(Buffer.from(sig, "base64")), signatureScheme: "rsa-pss-sha256" };
}

async function anchored(url: string, id: Hex): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const view = (await (await fetch(`${url}/inference/settlements/${id}`)).json()) as Record<string, unknown>;
    if (view.status === "anchored") return view;
    if (view.status === "failed" || Date.now() > deadline) throw new Error(`not anchored: ${JSON.stringify(view)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const audit = (r: Pick<InferenceRecord, "inputHash" | "outputHash">) => auditor.verifyInference({ inputHash: r.inputHash, outputHash: r.outputHash });
const failing = (r: AuditReport) => r.checks.find((c) => c.name === r.failedCheck);

/** Registers a key through the facilitator's POST /tees, under the local world's approved image unless told otherwise. */
async function register(key: { publicKey: Uint8Array }, image = "local-world-enclave"): Promise<void> {
  const { nonce } = (await (await postJson(`${fx.url}/tees/nonce`, {}, { authorization: `Bearer ${OPERATOR_KEY}` })).json()) as { nonce: Hex };
  const document = await w.tees.authority.attest({ signingKey: key.publicKey, nonce, pcrs: testPcrs(image) });
  const res = await postJson(`${fx.url}/tees`, { attestationDocument: encodeBase64(document), signingKey: toHex(key.publicKey) }, { authorization: `Bearer ${OPERATOR_KEY}` });
  if (res.status !== 201) throw new Error(`registration failed: ${await res.text()}`);
}

describe("a record the tee-gateway signed, posted as the gateway posts it", () => {
  it("is answered 202, anchored, and audited VERIFIED: anchored and attested, every TEE check passing", async () => {
    const gw: GatewayKey = { teeId: w.tees.gateway.teeId, privateKeyPem: w.tees.gateway.privateKeyPem, publicKey: new Uint8Array() };
    const request = JSON.stringify({ model: "gpt-4.1", messages: [{ role: "user", content: "is this attested?" }] });
    const response = "yes";
    const inputHash = keccak256(stringToBytes(request));
    const outputHash = keccak256(stringToBytes(response));
    const ts = BigInt(Math.floor(Date.now() / 1000));
    const data = { tee_id: gw.teeId, input_hash: inputHash.slice(2), output_hash: outputHash.slice(2), tee_signature: signRsaPss(gw.privateKeyPem, inferenceMessageHash(inputHash, outputHash, ts)), tee_timestamp: Number(ts) };
    const res = await fetch(`${fx.url}/settle_data`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "x-settlement-type": "batch", "x-settlement-data": Buffer.from(JSON.stringify(data)).toString("base64") },
      body: "{}",
    });
    const answer = (await res.json()) as { settlementJob: { jobId: Hex } };
    expect(res.status, JSON.stringify(answer)).toBe(202);
    const view = await anchored(fx.url, answer.settlementJob.jobId);
    expect(view).toMatchObject({ signatureScheme: "rsa-pss-sha256", teeId: gw.teeId });

    const report = await audit({ inputHash, outputHash });
    expect(report.verified, JSON.stringify(failing(report))).toBe(true);
    expect(report.assurance).toBe("attested");
    expect(report.batch!.leaf).toMatchObject({ version: "gateway", teeId: gw.teeId });
    for (const name of TRUST) expect(report.checks.find((c) => c.name === name), name).toMatchObject({ ok: true });
    expect(report.checks.filter((c) => TRUST.includes(c.name)).some((c) => c.skipped)).toBe(false);
    expect(report.checks.find((c) => c.name === "tee-attestation")!.detail).toMatch(/matches the registry's hash and chains to the root/);
  });

  it("audits the local secp256k1 TEE's attestation v2 records as attested too, and the whole batch", async () => {
    const record = signTeeRecord(w.tees.secp, { inputHash: keccak256(toHex("secp in")), outputHash: keccak256(toHex("secp out")), settlementType: "settle-batch" as const });
    const res = await postJson(`${fx.url}/inference/settlements`, record, { authorization: `Bearer ${INFERENCE_KEY}` });
    expect(res.status).toBe(202);
    const view = await anchored(fx.url, ((await res.json()) as { id: Hex }).id);
    const report = await audit(record);
    expect([report.verified, report.assurance]).toEqual([true, "attested"]);
    const batch = await auditor.verifyBatch(view.root as Hex);
    expect([batch.verified, batch.assurance]).toEqual([true, "attested"]);
  });
});

describe("records anchored behind the door's back", () => {
  it("a TEE never registered: NOT VERIFIED at tee-registered", async () => {
    const record = gatewayRecord(generateGatewayKey());
    await w.bypass.anchorGateway([record]);
    const report = await audit(record);
    expect([report.verified, report.failedCheck]).toEqual([false, "tee-registered"]);
    expect(failing(report)!.detail).toMatch(/never registered/);
    // Without requiring attestation, the same record is only "anchored".
    const lenient = await (await createAuditor({ ...config, requireAttested: false })).verifyInference(record);
    expect([lenient.verified, lenient.assurance]).toEqual([false, "none"]); // its RSA signature has no key to be checked under
    expect(lenient.failedCheck).toBe("tee-signature");
  });

  it("a TEE registered after the record was anchored: NOT VERIFIED at tee-registered", async () => {
    const late = generateGatewayKey();
    const record = gatewayRecord(late);
    const { blockNumber } = await w.bypass.anchorGateway([record]);
    await register(late);
    const report = await audit(record);
    expect([report.verified, report.failedCheck]).toEqual([false, "tee-registered"]);
    expect(failing(report)!.detail).toMatch(new RegExp(`after the record was anchored \\(block ${blockNumber}\\)`));
    expect(report.checks.find((c) => c.name === "tee-signature")!.ok).toBe(true);
  });

  it("a revoked measurement: NOT VERIFIED at tee-measurement", async () => {
    const pcrs = testPcrs("image-to-revoke");
    const hash = measurementOf(pcrs[0], pcrs[1], pcrs[2]).hash;
    await w.admin("approveMeasurement", [TeeType.AwsNitro, hash, "image-to-revoke"]);
    const gw = generateGatewayKey();
    await register(gw, "image-to-revoke");
    await w.admin("revokeMeasurement", [TeeType.AwsNitro, hash]);
    const record = gatewayRecord(gw);
    await w.bypass.anchorGateway([record]);
    const report = await audit(record);
    expect([report.verified, report.failedCheck]).toEqual([false, "tee-measurement"]);
    expect(failing(report)!.detail).toMatch(/revoked at block \d+, before the anchor/);
  });

  it("an attestation blob that does not match the registry's hash: NOT VERIFIED at tee-attestation", async () => {
    const gw = generateGatewayKey();
    const document = await w.tees.authority.attest({ signingKey: gw.publicKey, pcrs: testPcrs("local-world-enclave") });
    const otherBlob = await w.bypass.upload(await w.tees.authority.attest({ signingKey: generateGatewayKey().publicKey, pcrs: testPcrs("local-world-enclave") }));
    await w.bypass.register([gw.teeId, TeeType.AwsNitro, KeyScheme.RsaPssSha256, toHex(gw.publicKey), w.tees.registry.measurement, toHex(otherBlob), keccak256(document)]);
    const record = gatewayRecord(gw);
    await w.bypass.anchorGateway([record]);
    const report = await audit(record);
    expect([report.verified, report.failedCheck]).toEqual([false, "tee-attestation"]);
    expect(failing(report)!.detail).toMatch(/not to the registry's attestation hash/);
  });

  it("a signature under another key: NOT VERIFIED at tee-signature", async () => {
    const record = gatewayRecord(generateGatewayKey(), w.tees.gateway.teeId);
    await w.bypass.anchorGateway([record]);
    const report = await audit(record);
    expect([report.verified, report.failedCheck]).toEqual([false, "tee-signature"]);
    expect(failing(report)!.detail).toMatch(/not under the key registered/);
  });
});
