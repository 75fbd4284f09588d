import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Abi, Hex } from "viem";
import { repoRoot } from "./paths.ts";

export interface Artifact {
  abi: Abi;
  bytecode: Hex;
}

/** A compiled contract from Hardhat's artifacts (`pnpm compile`), e.g. `loadArtifact("SettlementRelay")`. */
export function loadArtifact(contract: string, sourceFile = `${contract}.sol`): Artifact {
  const path = join(repoRoot, "artifacts", "contracts", sourceFile, `${contract}.json`);
  try {
    const json = JSON.parse(readFileSync(path, "utf8"));
    return { abi: json.abi, bytecode: json.bytecode };
  } catch (e) {
    throw new Error(`artifact ${contract} not found at ${path}: run \`pnpm compile\` first (${(e as Error).message})`);
  }
}
