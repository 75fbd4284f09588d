/**
 * `pnpm demo`: a walk through everything against the running local world (`pnpm start` in another
 * terminal). Official x402 resource servers and clients pay on every network; the grid router's door
 * receives TEE-signed inference records; the worker anchors them; the auditor verifies them using
 * only the chain and the blob store.
 */
import { existsSync, readFileSync } from "node:fs";
import { once } from "node:events";
import express from "express";
import { toHex, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { createKeyPairSignerFromBytes, getBase58Encoder } from "@solana/kit";
import { x402Client } from "@x402/core/client";
import { HTTPFacilitatorClient } from "@x402/core/server";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { ExactEvmScheme } from "@x402/evm/exact/server";
import { paymentMiddleware, x402ResourceServer } from "@x402/express";
import { decodePaymentResponseHeader, wrapFetchWithPayment } from "@x402/fetch";
import { ExactSvmScheme as SvmClient } from "@x402/svm/exact/client";
import { ExactSvmScheme as SvmServer } from "@x402/svm/exact/server";
import { verifyInference } from "@facilitator/auditor";
import { PermitExactServerScheme, registerPermitScheme } from "@facilitator/evm";
import { devnetJsonPath, type DevnetJson } from "@facilitator/devnet";
import { signTeeRecord } from "@facilitator/inference";
import { heartbeatMessageHash, inferenceMessageHash, signRsaPss } from "@facilitator/tee";
import { keccak256, stringToBytes } from "viem";

const say = (line: string) => console.log(line);
const step = (title: string) => say(`\n== ${title}`);

if (!existsSync(devnetJsonPath)) {
  console.error(`No local world is running (${devnetJsonPath} is missing). Start it first: pnpm start`);
  process.exit(2);
}
const devnet: DevnetJson & { networks: Record<string, any> } = JSON.parse(readFileSync(devnetJsonPath, "utf8"));

/** One official @x402/express server charging on every network of the world. */
async function startResourceServer(): Promise<{ url: string; close(): void }> {
  const server = new x402ResourceServer(new HTTPFacilitatorClient({ url: devnet.facilitatorUrl }));
  const routes: Record<string, any> = {};
  for (const n of Object.values(devnet.networks)) {
    const solana = n.caip2.startsWith("solana:");
    // USDm (MegaETH) has no EIP-3009: its payers sign an ERC-2612 permit for the facilitator (packages/evm/PERMIT.md).
    server.register(n.caip2, solana ? new SvmServer() : n.asset.transferMethod === "permit" ? new PermitExactServerScheme() : new ExactEvmScheme());
    const extra = solana ? {} : { extra: { name: n.asset.name, version: n.asset.version } };
    routes[`GET /paid/${n.network}`] = {
      accepts: { scheme: "exact", network: n.caip2, payTo: n.payTo, price: { amount: "1000", asset: n.asset.address, ...extra }, maxTimeoutSeconds: 60 },
      description: `a paid answer on ${n.network}`,
    };
  }
  const app = express();
  app.use(paymentMiddleware(routes, server));
  app.get("/paid/:network", (req, res) => void res.json({ answer: `paid on ${req.params.network}` }));
  const listener = app.listen(0, "127.0.0.1");
  await once(listener, "listening");
  return { url: `http://127.0.0.1:${(listener.address() as { port: number }).port}`, close: () => listener.close() };
}

async function payingClient(n: any): Promise<typeof fetch> {
  const client = new x402Client().setSpendControls(false); // the local Solana mint is not one of the clients' default assets
  if (n.caip2.startsWith("solana:")) {
    const signer = await createKeyPairSignerFromBytes(getBase58Encoder().encode(n.payer.secretKey));
    client.register("solana:*", new SvmClient(signer, { rpcUrl: n.rpcUrl }));
  } else if (n.asset.transferMethod === "permit") {
    registerPermitScheme(client, { signer: privateKeyToAccount(n.payer.privateKey), rpcUrl: n.rpcUrl });
  } else {
    registerExactEvmScheme(client, { signer: privateKeyToAccount(n.payer.privateKey) });
  }
  return wrapFetchWithPayment(fetch, client);
}

async function main(): Promise<void> {
  say(`Facilitator ${devnet.facilitatorUrl}`);
  step("Payments: official @x402/express server, official @x402/fetch clients");
  const resource = await startResourceServer();
  let failures = 0;
  try {
    for (const n of Object.values(devnet.networks)) {
      const unpaid = await fetch(`${resource.url}/paid/${n.network}`);
      const pay = await payingClient(n);
      const res = await pay(`${resource.url}/paid/${n.network}`);
      const settlement = res.headers.get("payment-response") ? decodePaymentResponseHeader(res.headers.get("payment-response")!) : undefined;
      const ok = unpaid.status === 402 && res.status === 200 && settlement?.success;
      if (!ok) failures++;
      say(`  ${n.network.padEnd(14)} 402 -> pay -> ${res.status}  ${ok ? "settled" : "FAILED"}  tx ${settlement?.transaction ?? "-"}`);
    }
  } finally {
    resource.close();
  }

  step("Inference anchoring: the grid router posts TEE-signed records");
  if (!devnet.inferenceApiKey || !devnet.tee || !devnet.settlementRelay || !devnet.walrus) throw new Error("the world has no inference pipeline");
  const tee = devnet.tee;
  const records = Array.from({ length: 8 }, () => {
    const inputHash = toHex(crypto.getRandomValues(new Uint8Array(32)));
    const outputHash = toHex(crypto.getRandomValues(new Uint8Array(32)));
    // The TEE signs the whole record (attestation v2): hashes, time, settlement type and metadata hash.
    return signTeeRecord(tee, { inputHash, outputHash, settlementType: "settle-batch" as const });
  });
  const posted = await fetch(`${devnet.facilitatorUrl}/inference/settlements`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${devnet.inferenceApiKey}` },
    body: JSON.stringify({ records }),
  });
  const accepted = (await posted.json()) as { results: { id: Hex }[]; accepted: number };
  say(`  POST /inference/settlements -> ${posted.status}, ${accepted.accepted} records queued`);

  const views: any[] = [];
  for (const { id } of accepted.results) {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const view = await (await fetch(`${devnet.facilitatorUrl}/inference/settlements/${id}`)).json();
      if (view.status === "anchored") {
        views.push(view);
        break;
      }
      if (view.status === "failed" || Date.now() > deadline) throw new Error(`record ${id} not anchored: ${JSON.stringify(view)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  step("The tee-gateway drop-in: a record in the gateway's exact format, and its heartbeat");
  const gateway = devnet.gatewayTee!;
  const request = JSON.stringify({ model: "demo", messages: [{ role: "user", content: "hello" }] });
  const gatewayRecord = { inputHash: keccak256(stringToBytes(request)), outputHash: keccak256(stringToBytes("hello, attested")) };
  const now = BigInt(Math.floor(Date.now() / 1000));
  const settleData = {
    tee_id: gateway.teeId,
    input_hash: gatewayRecord.inputHash.slice(2),
    output_hash: gatewayRecord.outputHash.slice(2),
    tee_signature: signRsaPss(gateway.privateKeyPem, inferenceMessageHash(gatewayRecord.inputHash, gatewayRecord.outputHash, now)),
    tee_timestamp: Number(now),
  };
  const job = await fetch(`${devnet.facilitatorUrl}/settle_data`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-settlement-type": "batch", "x-settlement-data": Buffer.from(JSON.stringify(settleData)).toString("base64") },
    body: "{}",
  });
  const { settlementJob } = (await job.json()) as { settlementJob: { jobId: Hex } };
  say(`  POST /settle_data (x-settlement-type batch) -> ${job.status}, job ${settlementJob?.jobId}`);
  const beat = await fetch(`${devnet.facilitatorUrl}/heartbeat`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ teeId: gateway.teeId, timestamp: String(now), signature: signRsaPss(gateway.privateKeyPem, heartbeatMessageHash(gateway.teeId, now)) }),
  });
  say(`  POST /heartbeat -> ${beat.status}, relayed in tx ${((await beat.json()) as { txHash?: string }).txHash ?? "-"}`);
  if (job.status !== 202 || beat.status !== 200) failures++;
  for (const deadline = Date.now() + 60_000; ; ) {
    const view = await (await fetch(`${devnet.facilitatorUrl}/inference/settlements/${settlementJob.jobId}`)).json();
    if (view.status === "anchored") break;
    if (view.status === "failed" || Date.now() > deadline) throw new Error(`gateway record not anchored: ${JSON.stringify(view)}`);
    await new Promise((r) => setTimeout(r, 200));
  }

  const roots = new Set(views.map((v) => v.root));
  say(`  anchored in ${roots.size} batch(es): root ${views[0].root}`);
  say(`  relay ${devnet.settlementRelay.address}, tx ${views[0].transactionHash}, Walrus blob ${views[0].walrusBlobId}`);

  step("Audit: chain and blob store only, the facilitator is not asked");
  const relayNetwork = devnet.networks[devnet.settlementRelay.network];
  // The TEE registry and the local world's test root: trust in the enclaves is decided from them, not from us.
  for (const r of [...records.slice(0, 2), gatewayRecord]) {
    const report = await verifyInference({
      rpcUrl: relayNetwork.rpcUrl,
      chainId: relayNetwork.chainId,
      relayAddress: devnet.settlementRelay.address,
      aggregatorUrl: devnet.walrus.aggregatorUrl,
      teeRegistry: devnet.teeRegistry?.address,
      attestationRoots: devnet.teeRegistry ? [devnet.teeRegistry.attestationRootPem] : undefined,
      blobIdCheck: "local",
      inputHash: r.inputHash,
      outputHash: r.outputHash,
    });
    if (!report.verified) failures++;
    const verdict = report.verified ? (report.assurance === "attested" ? "VERIFIED, attested by an approved enclave" : "VERIFIED (anchored)") : `NOT VERIFIED (${report.failedCheck})`;
    say(`  ${r.inputHash.slice(0, 18)}…  ${verdict}  (${report.checks.filter((c) => c.ok && !c.skipped).length} checks)`);
  }
  say(`\nExplorer: ${devnet.facilitatorUrl}/explorer`);
  say(failures ? `\n${failures} step(s) failed.` : "\nEvery step succeeded.");
  process.exit(failures ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
