/**
 * Permit2 and the two x402 Permit2 proxies at their canonical addresses on a local anvil chain.
 *
 * Permit2 is a dev-only test fixture: it is compiled from the sources that ship in the npm dev
 * dependency `@uniswap/v4-periphery` (lib/permit2, with solmate, AGPL-3.0) with the npm `solc` at its
 * pragma's version (0.8.17, the `solc-0.8.17` alias), never copied into this tree and never part of
 * what the product ships or deploys. The compiled artifact is cached under the git-ignored
 * cache/permit2/ folder (Hardhat removes from artifacts/ what it did not build), keyed by a hash of its sources and compiler settings.
 *
 * Permit2 caches its EIP-712 domain separator (computed with `address(this)`) and the chain id as
 * immutables at construction. Rather than deploying it somewhere else and copying code that carries the
 * wrong separator, the runtime code is filled in here exactly as the constructor would have done it at
 * the canonical address: the compiler reports where each immutable lives in the runtime code
 * (`immutableReferences`), and those bytes are set to the chain id and to the separator for
 * ("Permit2", chainId, 0x000000000022D473030F116dDEE9F6B43aC78BA3) before `anvil_setCode`.
 *
 * The x402 proxies (contracts/fixtures/x402Permit2Proxies.sol, our own fixtures of the documented
 * interface) only hold the Permit2 address as an immutable, which does not depend on where they live:
 * their runtime code is produced by simulating their creation (`eth_call` with the creation code and
 * the canonical Permit2 address as constructor argument) and placed with `anvil_setCode`.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import {
  concatHex,
  createPublicClient,
  encodeAbiParameters,
  getAddress,
  http,
  keccak256,
  numberToHex,
  stringToHex,
  type Abi,
  type Address,
  type Hex,
} from "viem";
import { loadArtifact } from "./artifacts.ts";
import { repoRoot } from "./paths.ts";

const execFileAsync = promisify(execFile);

export const PERMIT2_ADDRESS: Address = "0x000000000022D473030F116dDEE9F6B43aC78BA3";
export const X402_EXACT_PERMIT2_PROXY_ADDRESS: Address = "0x402085c248EeA27D92E8b30b2C58ed07f9E20001";
export const X402_UPTO_PERMIT2_PROXY_ADDRESS: Address = "0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002";

export interface Permit2Artifact {
  solcVersion: string;
  sourceHash: string;
  abi: Abi;
  bytecode: Hex;
  deployedBytecode: Hex;
  /** Byte ranges of each immutable in the runtime code, by the immutable's name. */
  immutables: Record<string, { start: number; length: number }[]>;
}

export const permit2ArtifactPath = join(repoRoot, "cache", "permit2", "Permit2.json");

let artifactPromise: Promise<Permit2Artifact> | undefined;

/**
 * Permit2's compiled artifact, compiled once into the cache when its sources or settings changed (in a
 * child process: a cold solcjs via-IR compile takes ~20 s and must not block this event loop).
 */
export function loadPermit2Artifact(): Promise<Permit2Artifact> {
  artifactPromise ??= (async () => {
    const script = fileURLToPath(new URL("./permit2-compile.mjs", import.meta.url));
    try {
      await execFileAsync(process.execPath, [script, permit2ArtifactPath], { cwd: repoRoot, maxBuffer: 16 << 20 });
    } catch (e) {
      const err = e as { stderr?: string; message: string };
      throw new Error(`compiling Permit2 failed: ${err.stderr || err.message}`);
    }
    return JSON.parse(readFileSync(permit2ArtifactPath, "utf8")) as Permit2Artifact;
  })();
  artifactPromise.catch(() => (artifactPromise = undefined));
  return artifactPromise;
}

/** The EIP-712 domain separator Permit2 uses: name "Permit2", no version, chainId, verifyingContract. */
export function permit2DomainSeparator(chainId: number, verifyingContract: Address = PERMIT2_ADDRESS): Hex {
  const typeHash = keccak256(stringToHex("EIP712Domain(string name,uint256 chainId,address verifyingContract)"));
  return keccak256(
    encodeAbiParameters(
      [{ type: "bytes32" }, { type: "bytes32" }, { type: "uint256" }, { type: "address" }],
      [typeHash, keccak256(stringToHex("Permit2")), BigInt(chainId), verifyingContract],
    ),
  );
}

/**
 * Permit2's runtime code as its constructor would have left it at `address` on chain `chainId`:
 * `_CACHED_CHAIN_ID` and `_CACHED_DOMAIN_SEPARATOR` written where the compiler placed them.
 */
export function permit2RuntimeCode(artifact: Permit2Artifact, chainId: number, address: Address = PERMIT2_ADDRESS): Hex {
  const values: Record<string, Hex> = {
    _CACHED_CHAIN_ID: numberToHex(chainId, { size: 32 }),
    _CACHED_DOMAIN_SEPARATOR: permit2DomainSeparator(chainId, address),
  };
  const names = Object.keys(artifact.immutables).sort();
  if (names.join() !== Object.keys(values).sort().join()) {
    throw new Error(`Permit2 immutables are ${names.join(", ")}, expected ${Object.keys(values).join(", ")}`);
  }
  const code = Buffer.from(artifact.deployedBytecode.slice(2), "hex");
  for (const [name, refs] of Object.entries(artifact.immutables)) {
    const value = Buffer.from(values[name]!.slice(2), "hex");
    for (const { start, length } of refs) {
      if (length !== 32) throw new Error(`Permit2 immutable ${name} has length ${length}`);
      value.copy(code, start);
    }
  }
  return `0x${code.toString("hex")}`;
}

async function rpc<T>(rpcUrl: string, method: string, params: unknown[]): Promise<T> {
  const res = await fetch(rpcUrl, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
  });
  const body = (await res.json()) as { result?: T; error?: { message: string } };
  if (body.error) throw new Error(`${method}: ${body.error.message}`);
  return body.result as T;
}

/** Runtime code of a contract created with `creationCode`, without sending a transaction. */
async function simulateCreation(rpcUrl: string, creationCode: Hex): Promise<Hex> {
  const code = await rpc<Hex>(rpcUrl, "eth_call", [{ data: creationCode, gas: numberToHex(30_000_000) }, "latest"]);
  if (!code || code === "0x") throw new Error("contract creation returned no code");
  return code;
}

async function setCode(rpcUrl: string, address: Address, code: Hex): Promise<void> {
  await rpc(rpcUrl, "anvil_setCode", [address, code]);
  const placed = await rpc<Hex>(rpcUrl, "eth_getCode", [address, "latest"]);
  if (placed.toLowerCase() !== code.toLowerCase()) throw new Error(`anvil_setCode ${address}: code did not stick`);
}

export interface Permit2Contracts {
  permit2: Address;
  exactProxy: Address;
  uptoProxy: Address;
}

/**
 * Places Permit2, x402ExactPermit2Proxy and x402UptoPermit2Proxy at their canonical addresses on an
 * anvil node. Sends no transaction (no deployer nonce is used).
 */
export async function installPermit2Contracts(opts: { rpcUrl: string; chainId: number }): Promise<Permit2Contracts> {
  const chainId = Number(await createPublicClient({ transport: http(opts.rpcUrl) }).getChainId());
  if (chainId !== opts.chainId) throw new Error(`node at ${opts.rpcUrl} runs chain ${chainId}, expected ${opts.chainId}`);
  await setCode(opts.rpcUrl, PERMIT2_ADDRESS, permit2RuntimeCode(await loadPermit2Artifact(), chainId));
  const permit2Arg = encodeAbiParameters([{ type: "address" }], [PERMIT2_ADDRESS]);
  for (const [name, address] of [
    ["x402ExactPermit2Proxy", X402_EXACT_PERMIT2_PROXY_ADDRESS],
    ["x402UptoPermit2Proxy", X402_UPTO_PERMIT2_PROXY_ADDRESS],
  ] as const) {
    const artifact = loadArtifact(name, "fixtures/x402Permit2Proxies.sol");
    await setCode(opts.rpcUrl, address, await simulateCreation(opts.rpcUrl, concatHex([artifact.bytecode, permit2Arg])));
  }
  return {
    permit2: getAddress(PERMIT2_ADDRESS),
    exactProxy: getAddress(X402_EXACT_PERMIT2_PROXY_ADDRESS),
    uptoProxy: getAddress(X402_UPTO_PERMIT2_PROXY_ADDRESS),
  };
}
