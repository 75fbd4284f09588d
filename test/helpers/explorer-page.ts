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

type Check = { name: string; ok: boolean; skipped?: boolean; detail: string };
type Rpc = (m: string, p: unknown[]) => Promise<unknown>;

export interface ExplorerTees {
  decodeTee(hex: Hex): { signingKey: Hex; scheme: number; teeType: number; registeredBlock: bigint; registeredAt: bigint; lastHeartbeat: bigint; revokedBlock: bigint; measurement: Hex; attestationHash: Hex };
  decodeMeasurement(hex: Hex): { status: number; approvedBlock: bigint; revokedBlock: bigint };
  judgeRegistered(tee: object, teeId: Hex, anchorBlock: bigint): Check;
  judgeMeasurement(tee: object, m: object, anchorBlock: bigint): Check;
  judgeAttestation(tee: object, view: object | undefined, documentHash: Hex | undefined): Check;
  checkSignature(leaf: object, tee: object, subtle: SubtleCrypto | undefined): Promise<Check>;
  verifyTee(o: { rpc: Rpc; registry: string; leaf: object; anchorBlock: bigint; view?: object; subtle?: SubtleCrypto }): Promise<{ attested: boolean; partly: boolean; checks: Check[] }>;
  describe(view: object): [string, string][];
  namesTee(leaf: unknown): boolean;
  GET_TEE: Hex;
  MEASUREMENT_STATUS: Hex;
}

const assetSource = (name: string) => readFileSync(new URL(`../../packages/server/src/routes/explorer-assets/${name}`, import.meta.url), "utf8");

/** The page's scripts run in one VM context, in the page's order. */
function pageContext(): Record<string, unknown> {
  const context: Record<string, unknown> = { TextEncoder, atob };
  vm.createContext(context);
  vm.runInContext(`${assetSource("verify.js")}\n${assetSource("tees.js")}\nthis.ExplorerVerify = ExplorerVerify; this.ExplorerTees = ExplorerTees;`, context);
  return context;
}

/** `ExplorerVerify` as the page defines it, from the file the server inlines. */
export function loadExplorerVerify(): ExplorerVerify {
  return pageContext().ExplorerVerify as ExplorerVerify;
}

/** `ExplorerTees` as the page defines it (on top of `ExplorerVerify`), from the files the server inlines. */
export function loadExplorerTees(): ExplorerTees {
  return pageContext().ExplorerTees as ExplorerTees;
}
