/**
 * The tee-gateway's intake, as its published facilitator answers it:
 *
 *   POST /settle_data   headers x-settlement-type (private | batch | individual) and x-settlement-data
 *                       (base64 JSON: tee_id, input_hash, output_hash, tee_signature, tee_timestamp;
 *                       individual also input, output, timestamp, eth_address); the body is ignored
 *     202 {settlementJob: {jobId, queue, status, createdAt, updatedAt}}   accepted (durably queued);
 *         jobId is the record id (GET /inference/settlements/:jobId shows its anchor)
 *     202 {settlementJob: null, notes}    private: acknowledged and ignored
 *     400 {error: reason, message}        refused, nothing stored (bad headers, a signature that is not
 *                                         the TEE's, a revoked TEE, input/output not the signed ones, ...)
 *     401 {error, message}                no active registered TEE's signature and no inference key
 *     503 the queue or the TEE registry is unreachable; a retry is safe
 *
 * Who may post: anyone, for a record carrying the RSA-PSS signature of an active registered TEE (the
 * gateway's own posts, which carry no credential); otherwise a caller with an inference key
 * (`Authorization: Bearer` or `X-Inference-Authorization`), where the deployment accepts records
 * without a registered TEE's signature (REQUIRE_TEE_SIGNATURE=false).
 */
import { Router, type RequestHandler } from "express";
import { Reason } from "@facilitator/core";
import { InferenceUnavailableError, settleDataFromHeaders, type InferenceService } from "@facilitator/inference";
import { inferenceCaller } from "../inference-auth.ts";
import { refuse } from "../ops/rejection.ts";

export interface GatewayRoutesOptions {
  inferenceApiKeys: readonly string[];
  guards?: RequestHandler[];
}

export function gatewayRoutes(service: InferenceService, opts: GatewayRoutesOptions): Router {
  const router = Router();
  const callerOf = inferenceCaller(opts.inferenceApiKeys);
  router.post("/settle_data", ...(opts.guards ?? []), async (req, res, next) => {
    const parsed = settleDataFromHeaders(req.headers);
    if (parsed.kind === "refused") return refuse(req, res, 400, parsed.error.reason, parsed.error.message);
    if (parsed.kind === "private") {
      res.locals.outcome = "private";
      return void res.status(202).json({ settlementJob: null, notes: "Private settlement ignored by facilitator." });
    }
    let result;
    try {
      [result] = await service.submit([parsed.input], { defaultType: "settle-batch", authenticated: callerOf(req.headers).authenticated });
    } catch (e) {
      if (!(e instanceof InferenceUnavailableError)) return next(e);
      res.set("Retry-After", "1");
      return refuse(req, res, 503, Reason.unavailable, e.message);
    }
    if (!result || "error" in result) {
      const error = result?.error ?? { reason: Reason.invalidInferenceRecord, message: "no result" };
      return refuse(req, res, error.reason === Reason.inferenceUnauthenticated ? 401 : 400, error.reason, error.message);
    }
    res.locals.outcome = result.duplicate ? "duplicate" : "accepted";
    const now = new Date().toISOString();
    res.status(202).json({ settlementJob: { jobId: result.id, queue: parsed.settlementType, status: result.status, duplicate: result.duplicate, createdAt: now, updatedAt: now } });
  });
  return router;
}
