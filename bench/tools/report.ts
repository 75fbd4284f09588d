/**
 * Rewrites BENCHMARKS.md from a saved run (and the current bench/analysis.md), without running again:
 *
 *   pnpm exec tsx bench/tools/report.ts bench/results/<run>.json
 */
import { readFileSync } from "node:fs";
import { relative, resolve } from "node:path";
import { repoRoot } from "@facilitator/devnet";
import { writeBenchmarksMd } from "../lib/markdown.ts";
import type { RawResults } from "../lib/report.ts";

const file = process.argv[2];
if (!file) throw new Error("usage: report.ts <results.json>");
const raw = JSON.parse(readFileSync(file, "utf8")) as RawResults;
writeBenchmarksMd(raw, relative(repoRoot, resolve(file)));
console.log("wrote BENCHMARKS.md");
