/**
 * Trusted TEEs over HTTP.
 *
 *   POST /tees/nonce   (operator key: OPERATOR_API_KEY as `Authorization: Bearer` or `x-api-key`)
 *     200 {nonce, expiresAt}: a fresh nonce for the enclave's attestation document
 *         (`GET /enclave/attestation?nonce=<nonce without 0x>` on a nitriding enclave)
 *   POST /tees         (operator key)
 *     body {attestationDocument (base64), signingKey (PEM, 0x-hex or base64 DER), teeType? ("aws-nitro"),
 *           endpoint?, paymentAddress?, tlsCertificate? (base64 DER)}
 *     201 {teeId, scheme, teeType, measurement, attestationHash, attestationBlobId, transactionHash, ...}
 *     400/409 {error: reason, message}: nothing was written (attestation_*, tee_already_registered, ...)
 *     503 the registry, Walrus or the chain is unreachable, or registration is not configured
 *   POST /heartbeat    (anonymous: the TEE's signature is the proof; the gateway's format)
 *     body {teeId, timestamp, signature (base64), contractAddress?}
 *     200 {success: true, txHash, teeId, timestamp, relayer, contract}
 *     4xx/503 {success: false, error: reason, message}: nothing was spent
 *
 * Without an operator key configured, the registration routes refuse everyone: they are never open.
 */
import express, { Router, type RequestHandler } from "express";
import { Reason } from "@facilitator/core";
import { parseHeartbeat, parseRegistration, RegistryError, type HeartbeatRelay, type TeeRegistrar } from "@facilitator/inference";
import { apiKeyGuard } from "../ops/auth.ts";
import { refuse } from "../ops/rejection.ts";

export interface TeeRoutesOptions {
  registrar?: TeeRegistrar;
  heartbeat?: HeartbeatRelay;
  operatorApiKey?: string;
  /** Run before the heartbeat route's body is parsed (a rate limit per client). */
  guards?: RequestHandler[];
}

export function teeRoutes(opts: TeeRoutesOptions): Router {
  const router = Router();
  const json = express.json({ limit: "64kb" });
  const operator: RequestHandler = opts.operatorApiKey
    ? apiKeyGuard([opts.operatorApiKey])
    : (req, res) => refuse(req, res, 401, Reason.unauthorized, "no OPERATOR_API_KEY is configured on this facilitator: TEE registration is closed");
  const unavailable: RequestHandler = (req, res) =>
    refuse(req, res, 503, "tee_registration_unavailable", "TEE registration needs TEE_REGISTRY_ADDRESS, the relay, Walrus and a relayer key");

  router.post("/tees/nonce", operator, async (req, res) => {
    if (!opts.registrar) return unavailable(req, res, () => undefined);
    let issued;
    try {
      issued = await opts.registrar.issueNonce();
    } catch (e) {
      const reason = e instanceof RegistryError ? e.reason : "tee_state_unavailable";
      return refuse(req, res, 503, reason, e instanceof RegistryError ? e.message : "no nonce could be issued");
    }
    res.locals.outcome = "issued";
    res.json({ nonce: issued.nonce, expiresAt: issued.expiresAt.toISOString() });
  });

  router.post("/tees", operator, json, async (req, res) => {
    if (!opts.registrar) return unavailable(req, res, () => undefined);
    const parsed = parseRegistration(req.body);
    if (!parsed.ok) return refuse(req, res, parsed.status, parsed.reason, parsed.message);
    const outcome = await opts.registrar.register(parsed.value);
    if (!outcome.ok) return refuse(req, res, outcome.status, outcome.reason, outcome.message);
    res.locals.outcome = "registered";
    const { ok: _ok, ...registered } = outcome;
    res.status(201).json(registered);
  });

  router.post("/heartbeat", ...(opts.guards ?? []), json, async (req, res) => {
    const relay = opts.heartbeat;
    const fail = (status: number, reason: string, message: string) => {
      res.locals.outcome = reason;
      res.status(status).json({ success: false, error: reason, message });
    };
    if (!relay) return fail(503, "heartbeat_relay_unavailable", "this facilitator relays no heartbeats (TEE_REGISTRY_ADDRESS and a relayer key are needed)");
    const parsed = parseHeartbeat(req.body);
    if (!parsed.ok) return fail(parsed.status, parsed.reason, parsed.message);
    const outcome = await relay.relay(parsed.value);
    if (!outcome.ok) return fail(outcome.status, outcome.reason, outcome.message);
    res.locals.outcome = "relayed";
    res.json({
      success: true,
      txHash: outcome.transactionHash,
      blockNumber: outcome.blockNumber.toString(),
      teeId: outcome.teeId,
      timestamp: outcome.timestamp.toString(),
      relayer: relay.relayerAddress,
      contract: relay.registryAddress,
    });
  });

  return router;
}
