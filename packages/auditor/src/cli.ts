/**
 * `pnpm auditor verify --input-hash 0x.. --output-hash 0x..`, `pnpm auditor batch <root>`,
 * `pnpm auditor scan --from-block N`. Exit 0 verified, 1 not verified, 2 usage or configuration error.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { isHex, type Hex } from "viem";
import { FacilitatorError } from "@facilitator/core";
import { ConfigProblem, describeSettings, resolveConfig, type ConfigFlags, type DevnetView, type ResolvedConfig } from "./config.ts";
import { UsageError } from "./errors.ts";
import { renderReport, renderScan } from "./render.ts";
import type { AuditReport, ScanReport } from "./report.ts";
import { createAuditor } from "./verify.ts";

const USAGE = `Usage:
  pnpm auditor verify --input-hash 0x.. --output-hash 0x.. [options] [--hint URL | --record-id ID]
  pnpm auditor batch <merkle root> [options]
  pnpm auditor scan [--from-block N] [--to-block N] [options]

Options (flags, then the environment; .devnet/devnet.json only when no trusted setting is given):
  --rpc URL               JSON-RPC of the chain the relay is on          (AUDIT_RPC_URL)
  --chain-id N            refuse an RPC serving another chain             (AUDIT_CHAIN_ID)
  --relay 0x..            the SettlementRelay you trust                    (AUDIT_RELAY, X402_SETTLEMENT_CONTRACT)
  --aggregator URL        Walrus aggregator                                (AUDIT_AGGREGATOR_URL, WALRUS_AGGREGATOR_URL)
  --tee-key teeId=0x..    registered TEE key; repeat for several           (TEE_KEYS=id=addr,id=addr)
  --tee-registry 0x..     the TEERegistry whose attested enclaves you trust (AUDIT_TEE_REGISTRY, TEE_REGISTRY_ADDRESS)
  --attestation-root PEM  root certificate file; repeat for several       (AUDIT_ATTESTATION_ROOTS=a.pem,b.pem; default AWS Nitro)
  --require-attested B    true: less than an approved enclave's attestation fails (default true with a registry)
                                                                            (AUDIT_REQUIRE_ATTESTED)
  --check-blob-id MODE    walrus | local | none                            (AUDIT_CHECK_BLOB_ID)
  --from-block N          first block to search                            (AUDIT_FROM_BLOCK)
  --hint URL              the facilitator's /inference/settlements/:id (a hint, never evidence)
  --record-id ID          same, built from --facilitator URL               (AUDIT_FACILITATOR_URL)
  --devnet PATH           devnet.json to read defaults from (default .devnet/devnet.json)
  --no-devnet             ignore devnet.json
  --json                  machine-readable report on stdout
  -h, --help

Exit status: 0 verified, 1 not verified (the report names the failing check), 2 usage or configuration error.`;

export async function main(argv: string[], env: Record<string, string | undefined> = process.env): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        "input-hash": { type: "string" },
        "output-hash": { type: "string" },
        rpc: { type: "string" },
        "chain-id": { type: "string" },
        relay: { type: "string" },
        aggregator: { type: "string" },
        "tee-key": { type: "string", multiple: true },
        "tee-registry": { type: "string" },
        "attestation-root": { type: "string", multiple: true },
        "require-attested": { type: "string" },
        "check-blob-id": { type: "string" },
        "from-block": { type: "string" },
        "to-block": { type: "string" },
        hint: { type: "string" },
        "record-id": { type: "string" },
        facilitator: { type: "string" },
        devnet: { type: "string" },
        "no-devnet": { type: "boolean" },
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    return usage((e as Error).message);
  }
  const { values: v, positionals } = parsed;
  const [command, ...args] = positionals;
  if (v.help || !command) {
    (v.help ? process.stdout : process.stderr).write(USAGE + "\n");
    return v.help ? 0 : 2;
  }

  let config: ResolvedConfig;
  try {
    const devnet = v["no-devnet"] ? undefined : readDevnet(v.devnet ?? join(repoRoot(), ".devnet", "devnet.json"), v.devnet !== undefined);
    const flags: ConfigFlags = {
      rpc: v.rpc,
      chainId: v["chain-id"],
      relay: v.relay,
      aggregator: v.aggregator,
      teeKey: v["tee-key"],
      teeRegistry: v["tee-registry"],
      attestationRoot: v["attestation-root"],
      requireAttested: v["require-attested"],
      checkBlobId: v["check-blob-id"],
      fromBlock: v["from-block"],
      facilitator: v.facilitator,
    };
    config = resolveConfig(flags, env, devnet, (path) => readFileSync(path, "utf8"));
  } catch (e) {
    return operatorError(e);
  }

  try {
    const auditor = await createAuditor(config);
    const color = !v.json && process.stdout.isTTY === true && !env.NO_COLOR;
    // Which settings this verdict rests on, and where each came from.
    if (!v.json) process.stdout.write(`${describeSettings(config).map((l, i) => `${i ? "           " : "Trusting   "}${l}`).join("\n")}\n\n`);
    const settings = { sources: config.sources, teeRegistry: config.teeRegistry, requireAttested: config.requireAttested, ...(config.devnetIgnored ? { devnetIgnored: config.devnetIgnored } : {}) };
    if (command === "verify") {
      const inputHash = hash32(v["input-hash"], "--input-hash");
      const outputHash = hash32(v["output-hash"], "--output-hash");
      if (args.length) throw new UsageError(`unexpected argument ${args[0]}`);
      let hintUrl = v.hint;
      if (v["record-id"]) {
        if (hintUrl) throw new UsageError("pass --hint or --record-id, not both");
        if (!config.facilitatorUrl) throw new UsageError("--record-id needs --facilitator URL (or AUDIT_FACILITATOR_URL)");
        hintUrl = `${config.facilitatorUrl.replace(/\/+$/, "")}/inference/settlements/${encodeURIComponent(v["record-id"])}`;
      }
      return print({ ...(await auditor.verifyInference({ inputHash, outputHash, hintUrl })), ...(v.json ? { settings } : {}) }, v.json, color);
    }
    if (command === "batch") {
      if (args.length !== 1) throw new UsageError("batch takes exactly one merkle root");
      return print({ ...(await auditor.verifyBatch(hash32(args[0], "the root"))), ...(v.json ? { settings } : {}) }, v.json, color);
    }
    if (command === "scan") {
      if (args.length) throw new UsageError(`unexpected argument ${args[0]}`);
      const toBlock = v["to-block"] === undefined ? undefined : blockNumber(v["to-block"], "--to-block");
      const report = await auditor.scan({
        fromBlock: config.fromBlock,
        toBlock,
        onProgress: (p) => {
          if (p.done === p.total || p.done % 10 === 0) process.stderr.write(`scanned ${p.done}/${p.total} batches\n`);
        },
      });
      return printScan(report, v.json, color);
    }
    throw new UsageError(`unknown command "${command}"`);
  } catch (e) {
    return operatorError(e);
  }
}

/**
 * Exit 2 without a stack for what the operator can fix: a usage error (ConfigProblem included) is
 * followed by the usage, any other FacilitatorError (an RPC that cannot be reached or serves another
 * chain) is a configuration error. Anything else is a bug and goes on with its stack.
 */
function operatorError(e: unknown): number {
  if (e instanceof UsageError) return usage(e.message);
  if (e instanceof FacilitatorError) {
    process.stderr.write(`configuration error: ${e.message}\n`);
    return 2;
  }
  throw e;
}

function print(report: AuditReport, json: boolean | undefined, color: boolean): number {
  process.stdout.write((json ? JSON.stringify(report, null, 2) : renderReport(report, { color })) + "\n");
  return report.verified ? 0 : 1;
}

function printScan(report: ScanReport, json: boolean | undefined, color: boolean): number {
  process.stdout.write((json ? JSON.stringify(report, null, 2) : renderScan(report, { color })) + "\n");
  return report.verified ? 0 : 1;
}

function usage(message: string): number {
  process.stderr.write(`${message}\n\n${USAGE}\n`);
  return 2;
}

function hash32(value: string | undefined, name: string): Hex {
  if (!value) throw new UsageError(`${name} is required`);
  if (!isHex(value, { strict: true }) || value.length !== 66) throw new UsageError(`${name} must be 32-byte hex (0x + 64 hex digits)`);
  return value.toLowerCase() as Hex;
}

function blockNumber(value: string, name: string): bigint {
  if (!/^\d+$/.test(value)) throw new UsageError(`${name} must be a block number`);
  return BigInt(value);
}

function readDevnet(path: string, required: boolean): DevnetView | undefined {
  if (!existsSync(path)) {
    if (required) throw new ConfigProblem(`--devnet ${path}: no such file`);
    return undefined;
  }
  try {
    return JSON.parse(readFileSync(path, "utf8")) as DevnetView;
  } catch (e) {
    throw new ConfigProblem(`${path} is not valid JSON: ${(e as Error).message}`);
  }
}

/** The workspace root (pnpm-workspace.yaml), where `pnpm start` writes .devnet/devnet.json. */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "pnpm-workspace.yaml"))) {
    const up = dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
  return dir;
}

const invokedDirectly = process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1];
if (invokedDirectly) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`auditor error: ${(e as Error).stack ?? e}\n`);
      process.exit(2);
    },
  );
}
