/** The explorer page's own verification code (explorer-assets/verify.js, plain JS inlined in the page), run in a VM context. */
import { readFileSync } from "node:fs";
import vm from "node:vm";
import type { Hex } from "viem";

export interface ExplorerVerify {
  keccak256(b: Uint8Array): Uint8Array;
  bytesToHex(b: Uint8Array): Hex;
  encodeLeaf(l: object): Hex;
  leafHash(l: object): Hex;
  hashPair(a: Hex, b: Hex): Hex;
  processProof(l: Hex, p: Hex[]): Hex;
  verifyResult(
    result: object,
    opts: { rpc: (m: string, p: unknown[]) => Promise<unknown>; relay: string },
  ): Promise<{ verified: boolean; checks: { name: string; ok: boolean; detail: string }[] }>;
  TOPICS: Record<string, Hex>;
  ANCHORED_AT: Hex;
}

/** `ExplorerVerify` as the page defines it, from the file the server inlines. */
export function loadExplorerVerify(): ExplorerVerify {
  const source = readFileSync(new URL("../../packages/server/src/routes/explorer-assets/verify.js", import.meta.url), "utf8");
  const context: Record<string, unknown> = { TextEncoder };
  vm.createContext(context);
  vm.runInContext(`${source}\nthis.ExplorerVerify = ExplorerVerify;`, context);
  return context.ExplorerVerify as ExplorerVerify;
}
