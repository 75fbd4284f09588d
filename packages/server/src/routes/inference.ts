/**
 * The inference doors.
 *
 *   POST /inference/settlements      (API key: `Authorization: Bearer <key>` or `x-api-key`)
 *     body: one record, or {records: [...]} (records default to settlementType settle-batch)
 *     A key-authenticated caller may post records without a TEE signature only when the facilitator does
 *     not require one (REQUIRE_TEE_SIGNATURE, true by default once TEE_KEYS is set); see validation.ts.
 *     202 {id, status, duplicate}                   one record, accepted (durably queued)
 *     202 {results: [...], accepted, rejected}      a list with at least one record accepted;
 *                                                   results[i] is {id, status, duplicate} or {error: {reason, message}}
 *     400 {error, message} / {results, accepted: 0, rejected}   nothing acceptable
 *     401 no valid key (also when no key is configured: this door is never open to all)
 *     413 more records than one request may carry
 *     503 the queue is unreachable; retry (Retry-After): a retry is safe, and records a failed call
 *         did store (its reply was lost) answer duplicate
 *   GET /inference/settlements/:id    (public: proofs are for anyone to check)
 *     200 the record's status and, once anchored: root, index, proof, batchSize, walrusBlobId,
 *         transactionHash, blockNumber, network, relayAddress
 *     404 unknown id
 */
import express, { Router, type RequestHandler } from "express";
import { Reason } from "@facilitator/core";
import {
  InferenceUnavailableError,
  type InferenceService,
  type SubmitResult,
} from "@facilitator/inference";
import { apiKeyGuard } from "../ops/auth.ts";
import { refuse } from "../ops/rejection.ts";

export interface InferenceRoutesOptions {
  /** Keys allowed to post records; empty means every post is refused. */
  apiKeys: readonly string[];
  /** Run after authentication (e.g. a rate limiter keyed on `res.locals.apiKeyId`). */
  guards?: RequestHandler[];
  /** Body limit of this router's own JSON parser (mount it before a smaller global one). */
  bodyLimit?: string;
}

export function inferenceRoutes(service: InferenceService, opts: InferenceRoutesOptions): Router {
  const router = Router();
  const keys = opts.apiKeys.filter(Boolean);
  const auth: RequestHandler = keys.length
    ? apiKeyGuard(keys)
    : (req, res) => refuse(req, res, 401, Reason.unauthorized, "no inference API key is configured on this facilitator");

  router.post(
    "/inference/settlements",
    auth,
    ...(opts.guards ?? []),
    express.json({ limit: opts.bodyLimit ?? "2mb" }),
    async (req, res, next) => {
      const body: unknown = req.body;
      const list = Array.isArray(body) ? body : isObject(body) && Array.isArray(body.records) && Object.keys(body).length === 1 ? body.records : undefined;
      if (!list && !isObject(body)) {
        return refuse(req, res, 400, Reason.invalidInferenceRecord, "the body must be one record or {records: [...]}");
      }
      if (list && list.length > service.maxRecordsPerSubmit) {
        return refuse(req, res, 413, Reason.payloadTooLarge, `at most ${service.maxRecordsPerSubmit} records per request`);
      }
      if (list && list.length === 0) return refuse(req, res, 400, Reason.invalidInferenceRecord, "records is empty");
      let results: SubmitResult[];
      try {
        // Behind the key guard: the caller holds an inference key.
        results = await service.submit(list ?? [body], { defaultType: "settle-batch", authenticated: true });
      } catch (e) {
        if (!(e instanceof InferenceUnavailableError)) return next(e);
        res.set("Retry-After", "1");
        return refuse(req, res, 503, Reason.unavailable, e.message);
      }
      const accepted = results.filter((r) => "id" in r).length;
      res.locals.outcome = accepted ? "accepted" : "rejected";
      if (!list) {
        const r = results[0]!;
        if ("error" in r) return refuse(req, res, 400, r.error.reason, r.error.message);
        return void res.status(202).json(r);
      }
      res.status(accepted ? 202 : 400).json({ results, accepted, rejected: results.length - accepted });
    },
  );

  router.get("/inference/settlements/:id", async (req, res) => {
    try {
      const view = await service.status(req.params.id);
      if (!view) return refuse(req, res, 404, Reason.notFound, `no inference record ${req.params.id}`);
      res.json(view);
    } catch {
      // The store is unreachable (e.g. Redis restarting): a lookup is safe to retry.
      res.set("Retry-After", "1");
      refuse(req, res, 503, Reason.unavailable, "the record store is unreachable; retry shortly");
    }
  });

  return router;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
