/**
 * Answers a request refused before it reached the facilitator (auth, rate limit, shutdown) in the shape
 * of the endpoint's own answer, so a caller reading `invalidReason` / `errorReason` still learns why.
 */
import type { Request, Response } from "express";

/** The body for a refusal on `path`: the /verify and /settle protocol shapes, a plain error elsewhere. */
export function rejectionBody(path: string, reason: string, message: string): Record<string, unknown> {
  if (/\/settle\/?$/i.test(path)) return { success: false, errorReason: reason, errorMessage: message, transaction: "", network: "" };
  if (/\/verify\/?$/i.test(path)) return { isValid: false, invalidReason: reason, invalidMessage: message };
  return { error: reason, message };
}

/** Sends the refusal and records the reason as the request's outcome (request log, metrics). */
export function refuse(req: Request, res: Response, status: number, reason: string, message: string): void {
  res.locals.outcome = reason;
  res.status(status).json(rejectionBody(req.path, reason, message));
}
