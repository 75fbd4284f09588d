/**
 * `pnpm tee`: the operator's side of TEE registration, through a running facilitator's routes (the
 * registrar's nonces live there):
 *
 *   pnpm tee nonce                                   a fresh nonce (POST /tees/nonce)
 *   pnpm tee register --gateway https://gw           asks the gateway for its key (GET /signing-key) and,
 *                                                    with a fresh nonce, for its attestation document
 *                                                    (GET /enclave/attestation?nonce=...), then POST /tees
 *   pnpm tee register --document doc.b64 --key key.pem   a document made with a nonce from `pnpm tee nonce`
 *
 * Options: --facilitator URL (FACILITATOR_URL), --operator-key KEY (OPERATOR_API_KEY), --endpoint URL,
 * --payment-address 0x.., --tee-type aws-nitro. Against the local world both come from devnet.json.
 * Exit 0 registered (or nonce printed), 1 refused (the reason is printed), 2 usage.
 */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { devnetJsonPath } from "@facilitator/devnet";

const USAGE = `Usage:
  pnpm tee nonce [--facilitator URL] [--operator-key KEY]
  pnpm tee register --gateway URL [--endpoint URL] [--payment-address 0x..] [--tee-type aws-nitro]
  pnpm tee register --document FILE --key FILE [--endpoint URL] [--payment-address 0x..] [--tee-type aws-nitro]`;

type Fetch = typeof fetch;

export interface TeeCliIo {
  env: Record<string, string | undefined>;
  fetch: Fetch;
  readFile: (path: string) => string;
  out: (line: string) => void;
  err: (line: string) => void;
  /** devnet.json, when the local world runs. */
  devnet?: { facilitatorUrl?: string; operatorApiKey?: string };
}

export async function teeCli(argv: string[], io: TeeCliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        facilitator: { type: "string" },
        "operator-key": { type: "string" },
        gateway: { type: "string" },
        document: { type: "string" },
        key: { type: "string" },
        endpoint: { type: "string" },
        "payment-address": { type: "string" },
        "tee-type": { type: "string" },
      },
    });
  } catch (e) {
    io.err(`${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values: v, positionals } = parsed;
  const facilitator = (v.facilitator ?? io.env.FACILITATOR_URL ?? io.devnet?.facilitatorUrl)?.replace(/\/+$/, "");
  const operatorKey = v["operator-key"] ?? io.env.OPERATOR_API_KEY ?? io.devnet?.operatorApiKey;
  if (!facilitator || !operatorKey) {
    io.err(`a facilitator URL and its operator key are needed (--facilitator, --operator-key, or FACILITATOR_URL, OPERATOR_API_KEY)\n\n${USAGE}`);
    return 2;
  }
  const post = async (path: string, body: unknown) => {
    const res = await io.fetch(`${facilitator}${path}`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${operatorKey}` }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json().catch(() => ({}))) as Record<string, unknown> };
  };
  const nonce = async () => {
    const answer = await post("/tees/nonce", {});
    if (answer.status !== 200) throw new Refused(answer.body);
    return answer.body.nonce as string;
  };

  try {
    if (positionals[0] === "nonce" && positionals.length === 1) {
      io.out(await nonce());
      return 0;
    }
    if (positionals[0] !== "register" || positionals.length !== 1) {
      io.err(USAGE);
      return 2;
    }
    let attestationDocument: string;
    let signingKey: string;
    if (v.gateway) {
      const gateway = v.gateway.replace(/\/+$/, "");
      const key = (await (await io.fetch(`${gateway}/signing-key`)).json()) as { public_key?: string };
      if (typeof key.public_key !== "string") throw new Error(`${gateway}/signing-key did not answer a public_key`);
      signingKey = key.public_key;
      const doc = await io.fetch(`${gateway}/enclave/attestation?nonce=${(await nonce()).replace(/^0x/, "")}`);
      if (!doc.ok) throw new Error(`${gateway}/enclave/attestation answered ${doc.status}`);
      attestationDocument = (await doc.text()).trim();
    } else if (v.document && v.key) {
      attestationDocument = io.readFile(v.document).trim();
      signingKey = io.readFile(v.key);
    } else {
      io.err(`register needs --gateway URL, or --document FILE and --key FILE\n\n${USAGE}`);
      return 2;
    }
    const endpoint = v.endpoint ?? v.gateway;
    const answer = await post("/tees", {
      attestationDocument,
      signingKey,
      ...(v["tee-type"] ? { teeType: v["tee-type"] } : {}),
      ...(endpoint ? { endpoint } : {}),
      ...(v["payment-address"] ? { paymentAddress: v["payment-address"] } : {}),
    });
    if (answer.status !== 201) throw new Refused(answer.body);
    io.out(JSON.stringify(answer.body, null, 2));
    return 0;
  } catch (e) {
    if (e instanceof Refused) {
      io.err(`refused: ${e.reason}: ${e.message}`);
      return 1;
    }
    io.err(`error: ${(e as Error).message}`);
    return 1;
  }
}

class Refused extends Error {
  readonly reason: string;
  constructor(body: Record<string, unknown>) {
    super(String(body.message ?? "no message"));
    this.reason = String(body.error ?? "refused");
  }
}

const invokedDirectly = process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1];
if (invokedDirectly) {
  const devnet = existsSync(devnetJsonPath) ? (JSON.parse(readFileSync(devnetJsonPath, "utf8")) as TeeCliIo["devnet"]) : undefined;
  teeCli(process.argv.slice(2), {
    env: process.env,
    fetch,
    readFile: (path) => readFileSync(path, "utf8"),
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    devnet,
  }).then((code) => process.exit(code));
}
