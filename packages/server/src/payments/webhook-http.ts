/**
 * One attempt to deliver a notice: `POST` the stored body with a fresh timestamp and signature. Only
 * http(s), no redirects followed, a deadline for the whole exchange, at most a few KiB of the answer
 * read. Unless internal receivers are allowed, a URL naming (or resolving to) a loopback, private or
 * link-local address is refused before anything is sent: the check runs on the address the socket is
 * about to connect to, so a name that resolves differently the second time changes nothing.
 */
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { request as httpRequest, type RequestOptions } from "node:http";
import { request as httpsRequest } from "node:https";
import { isIP, type LookupFunction } from "node:net";
import { isInternalAddress, signNotice, WEBHOOK_HEADERS, type AttemptResult, type Delivery } from "@facilitator/payments";

export interface WebhookSenderOptions {
  timeoutMs: number;
  allowInternal: boolean;
}

/** What an answer body may take before the socket is dropped (receivers should answer with little). */
const MAX_ANSWER_BYTES = 4_096;

export type WebhookSender = (d: Delivery, secret: string, nowMs: number) => Promise<AttemptResult>;

export function webhookSender(opts: WebhookSenderOptions): WebhookSender {
  return (d, secret, nowMs) =>
    new Promise<AttemptResult>((resolve) => {
      let url: URL;
      try {
        url = new URL(d.url);
      } catch {
        return resolve({ ok: false, error: "the receiver's URL cannot be read" });
      }
      const host = url.hostname.replace(/^\[|\]$/g, "");
      if (url.protocol !== "http:" && url.protocol !== "https:") return resolve({ ok: false, error: "the receiver's URL is not http(s)" });
      if (!opts.allowInternal && isIP(host) && isInternalAddress(host)) return resolve({ ok: false, error: "the receiver is at an internal address (WEBHOOK_ALLOW_INTERNAL is off)" });
      const timestamp = Math.floor(nowMs / 1000);
      const body = Buffer.from(d.body);
      const options: RequestOptions = {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "content-length": body.length,
          "user-agent": "x402-facilitator-webhooks/1",
          [WEBHOOK_HEADERS.id]: d.noticeId,
          [WEBHOOK_HEADERS.timestamp]: String(timestamp),
          [WEBHOOK_HEADERS.signature]: signNotice(secret, timestamp, d.body),
        },
        signal: AbortSignal.timeout(opts.timeoutMs),
        lookup: opts.allowInternal ? undefined : publicOnlyLookup,
        agent: false,
      };
      const req = (url.protocol === "https:" ? httpsRequest : httpRequest)(url, options, (res) => {
        const status = res.statusCode ?? 0;
        let read = 0;
        res.on("data", (chunk: Buffer) => {
          read += chunk.length;
          if (read > MAX_ANSWER_BYTES) res.destroy();
        });
        const done = () =>
          resolve(status >= 200 && status < 300 ? { ok: true, status } : { ok: false, status, error: status >= 300 && status < 400 ? `HTTP ${status} (redirects are not followed)` : `HTTP ${status}` });
        res.once("end", done);
        res.once("close", done);
        res.once("error", done);
      });
      req.once("error", (e: NodeJS.ErrnoException) => resolve({ ok: false, error: e.name === "AbortError" || e.code === "ABORT_ERR" ? `no answer within ${opts.timeoutMs} ms` : describe(e) }));
      req.end(body);
    });
}

/** dns.lookup, refusing every internal address it finds (an attacker-controlled name may list a public and a private one). */
const publicOnlyLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
    if (err) return callback(err, "", 0);
    const internal = addresses.find((a) => isInternalAddress(a.address));
    if (internal || !addresses.length) {
      return callback(Object.assign(new Error("the receiver's name resolves to an internal address (WEBHOOK_ALLOW_INTERNAL is off)"), { code: "EINTERNAL" }), "", 0);
    }
    if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
    callback(null, addresses[0]!.address, addresses[0]!.family);
  });
};

/** A network error as a short line without the receiver's URL (it may hold a token). */
function describe(e: NodeJS.ErrnoException): string {
  if (e.code === "EINTERNAL") return e.message;
  return e.code ? `${e.code}${e.syscall ? ` (${e.syscall})` : ""}` : e.message.slice(0, 120);
}
