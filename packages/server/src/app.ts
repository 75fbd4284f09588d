/** The HTTP shell: express routes over the Facilitator, with limits, logs and protocol-shaped errors. */
import { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import express, { type ErrorRequestHandler, type Request, type RequestHandler, type Response } from "express";
import type { Logger } from "pino";
import { Reason } from "@facilitator/core";
import { parseUsageMetadata, USAGE_METADATA_HEADER } from "@facilitator/payments";
import { requestedNetwork, type Facilitator } from "./facilitator.ts";
import type { InferencePipeline } from "./inference-pipeline.ts";
import { refuse } from "./ops/rejection.ts";
import type { SettledPayment } from "./payments/recorder.ts";
import type { TrustProxy } from "./ops/trust-proxy.ts";

export interface AppOptions {
  facilitator: Facilitator;
  logger: Logger;
  /** Largest accepted request body; a Solana transaction or EVM authorization is a few KiB. */
  bodyLimit?: string;
  /** Extra routers (inference doors, explorer, metrics), each parsing its own body. */
  routers?: express.Router[];
  /** Inference records named by /settle headers (`x-input-hash`, `x-output-hash`, ...). */
  inference?: Pick<InferencePipeline, "precheck" | "submitFromSettle">;
  /** Run before /verify and /settle parse their bodies (metrics, API keys, rate limits), so a refused caller costs no parsing. */
  paymentGuards?: RequestHandler[];
  /**
   * Express's `trust proxy` (TRUST_PROXY): which peers may name the client in X-Forwarded-For, so
   * `req.ip` (what rate limits count) is the client, not the load balancer. Default: trust nobody.
   */
  trustProxy?: TrustProxy;
  /** Extensions' outcomes for a /verify or /settle, sent as the EXTENSION-RESPONSES header (bazaar: routes/discovery.ts). */
  extensionResponses?: ExtensionResponder;
  /** Told of each /settle answer to a well-formed payment (the payments record); not awaited, so it never slows or fails an answer. */
  onSettled?: (s: SettledPayment) => void;
}

/** The EXTENSION-RESPONSES header value for a well-formed payment request and its outcome, if any extension has something to say. */
export type ExtensionResponder = (action: "verify" | "settle", body: unknown, outcome: { ok: boolean; payer?: string }) => Promise<string | undefined>;

export function createApp(opts: AppOptions): express.Express {
  const { facilitator, logger } = opts;
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  app.set("trust proxy", opts.trustProxy ?? false);
  app.use(requestLog(logger));
  const json = express.json({ limit: opts.bodyLimit ?? "64kb" });

  app.get("/health", (_req, res) => void res.json({ status: "ok" }));
  app.get("/supported", (_req, res) => void res.json(facilitator.supported()));
  app.get("/verify", (_req, res) => void res.json(describe("verify")));
  app.get("/settle", (_req, res) => void res.json(describe("settle")));

  const guards = opts.paymentGuards ?? [];
  app.post("/verify", ...guards, json, async (req, res) => {
    const answer = await facilitator.verify(req.body, res.locals.apiKeyId as string | undefined);
    res.locals.outcome = answer.body.isValid ? "valid" : answer.body.invalidReason;
    res.locals.network = answer.request?.network.name;
    const extensions = answer.request && (await opts.extensionResponses?.("verify", req.body, { ok: answer.body.isValid, payer: answer.body.payer }));
    if (extensions) res.set("EXTENSION-RESPONSES", extensions);
    res.status(answer.status).json(answer.body);
  });
  app.post("/settle", ...guards, json, async (req, res) => {
    const started = performance.now();
    // A record the headers name, and the usageMetadata reported, are checked before any money moves: bad input changes nothing.
    const usage = parseUsageMetadata(req.body, req.get(USAGE_METADATA_HEADER));
    const refused = (await opts.inference?.precheck(req.headers)) ?? (usage.ok ? undefined : usage);
    if (refused) {
      res.locals.outcome = refused.reason;
      res.status(200).json({ success: false, errorReason: refused.reason, errorMessage: refused.message, transaction: "", network: requestedNetwork(req.body) });
      return;
    }
    const answer = await facilitator.settle(req.body, res.locals.apiKeyId as string | undefined);
    res.locals.outcome = answer.body.success ? "success" : answer.body.errorReason;
    res.locals.network = answer.request?.network.name;
    if (answer.body.success && opts.inference) {
      const record = await opts.inference.submitFromSettle(req.headers, { network: answer.request!.network.name, transaction: answer.body.transaction });
      if (record) {
        // The record rides in `extensions`, which the official clients pass through untouched.
        answer.body.extensions = { ...answer.body.extensions, inferenceSettlement: record };
        if ("id" in record) res.set("x-inference-settlement-id", record.id);
      }
    }
    const extensions = answer.request && (await opts.extensionResponses?.("settle", req.body, { ok: answer.body.success, payer: answer.body.payer }));
    if (extensions) res.set("EXTENSION-RESPONSES", extensions);
    if (answer.request) {
      try {
        opts.onSettled?.({ request: answer.request, body: answer.body, latencyMs: performance.now() - started, usage: usage.ok ? usage.value : undefined });
      } catch (err) {
        opts.logger.warn({ err }, "recording a settle answer failed; the answer goes out regardless");
      }
    }
    res.status(answer.status).json(answer.body);
  });

  for (const r of opts.routers ?? []) app.use(r);
  app.use((req, res) => void res.status(404).json({ error: "not_found", message: `no route ${req.method} ${req.path}` }));
  app.use(errorHandler(logger));
  return app;
}

/**
 * Request and response classes whose prototypes are already `app`'s, for `http.createServer`.
 * Express gives every request and response its prototypes with `Object.setPrototypeOf`, which sends
 * V8 down slow paths for each of them; born with the same prototypes, that call changes nothing.
 * About 60 µs less per request here (half the HTTP shell's CPU); behaviour is the same.
 */
export function expressServerClasses(app: express.Express): { IncomingMessage: typeof IncomingMessage; ServerResponse: typeof ServerResponse } {
  // Node's constructors are plain functions, so they can run on `this`. Reflect.construct with another
  // new.target would survive their becoming classes, but measured slower than leaving it all to express.
  function Request(this: IncomingMessage, socket: Socket) {
    IncomingMessage.call(this, socket);
  }
  Request.prototype = app.request;
  function Reply(this: ServerResponse, req: IncomingMessage, options?: object) {
    (ServerResponse as unknown as (this: ServerResponse, req: IncomingMessage, options?: object) => void).call(this, req, options);
  }
  Reply.prototype = app.response;
  return { IncomingMessage: Request as unknown as typeof IncomingMessage, ServerResponse: Reply as unknown as typeof ServerResponse };
}

/** Body errors come back in the shape of the endpoint's answer, so a caller reading `invalidReason` still learns why. */
function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const tooLarge = err?.type === "entity.too.large";
    // Body parsers and the router mark what the client got wrong (bad JSON, bad encoding, bad %-escapes) with a 4xx.
    const clientFault = !tooLarge && Number.isInteger(err?.status) && err.status >= 400 && err.status < 500;
    const status = tooLarge ? 413 : clientFault ? 400 : 500;
    const settle = /\/settle\/?$/i.test(req.path);
    const reason = tooLarge ? Reason.payloadTooLarge : clientFault ? Reason.invalidPayload : settle ? Reason.unexpectedSettle : Reason.unexpectedVerify;
    const message = tooLarge ? "request body exceeds the size limit" : clientFault ? "request body or path cannot be read as the protocol" : "internal error";
    if (status === 500) logger.error({ err, path: req.path }, "unhandled error");
    if (res.headersSent) return;
    refuse(req, res, status, reason, message);
  };
}

function requestLog(logger: Logger): RequestHandler {
  return (req: Request, res: Response, next) => {
    const started = process.hrtime.bigint();
    res.on("finish", () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      logger.info(
        { method: req.method, path: req.path, status: res.statusCode, ms: Math.round(ms * 10) / 10, outcome: res.locals.outcome, network: res.locals.network },
        "request",
      );
    });
    next();
  };
}

function describe(endpoint: "verify" | "settle") {
  const answer =
    endpoint === "verify"
      ? "{isValid, invalidReason?, invalidMessage?, payer?}"
      : "{success, errorReason?, errorMessage?, payer?, transaction, network, amount?}";
  return {
    endpoint: `/${endpoint}`,
    method: "POST",
    description:
      endpoint === "verify"
        ? "Checks an x402 payment against its requirements without moving funds."
        : "Settles an x402 payment on chain, once. Repeats answer duplicate_settlement; a settlement_pending answer is reconciled by settling the same payment again.",
    body: "{x402Version: 1|2, paymentPayload, paymentRequirements}",
    answer,
    supportedVersions: [1, 2],
  };
}
