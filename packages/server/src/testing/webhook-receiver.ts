/** Test support: a webhook receiver on a local port answering each notice as told, keeping what it got. */
import type { IncomingMessage, ServerResponse } from "node:http";
import { listen, type Listening } from "./http.ts";

export interface ReceivedNotice {
  headers: IncomingMessage["headers"];
  /** The raw body, as the signature covers it. */
  body: string;
  /** What it answered. */
  status: number | "hang";
  at: number;
}

export interface WebhookReceiver extends Listening {
  got: ReceivedNotice[];
  /** Changes what the next requests are answered. */
  answer(statusFor: (n: number) => number | "hang"): void;
}

/** Answers its n-th request (from 0) `statusFor(n)` (a 3xx points elsewhere; "hang" never answers). */
export async function webhookReceiver(statusFor: (n: number) => number | "hang" = () => 204): Promise<WebhookReceiver> {
  const got: ReceivedNotice[] = [];
  let answer = statusFor;
  const server = await listen((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const status = answer(got.length);
      got.push({ headers: req.headers, body: Buffer.concat(chunks).toString(), status, at: Date.now() });
      if (status === "hang") return;
      if (status >= 300 && status < 400) res.setHeader("location", "http://127.0.0.1:9/elsewhere");
      res.statusCode = status;
      res.end();
    });
  });
  return Object.assign(server, { got, answer: (f: (n: number) => number | "hang") => void (answer = f) });
}
