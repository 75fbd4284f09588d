/**
 * Prints the timing spans of a results file written with BENCH_SPANS=1: per phase, count and mean
 * milliseconds of each span, beside the phase's client-side latency.
 *
 *   pnpm exec tsx bench/tools/spans.ts bench/results/latest.json [chain] [operation] [concurrency]
 */
import { readFileSync } from "node:fs";
import type { PhaseResult } from "../lib/phase.ts";

const [file, chain, operation, concurrency] = process.argv.slice(2);
if (!file) throw new Error("usage: spans.ts <results.json> [chain] [operation] [concurrency]");
const { results } = JSON.parse(readFileSync(file, "utf8")) as { results: PhaseResult[] };
for (const r of results) {
  if ((chain && r.chain !== chain) || (operation && r.operation !== operation) || (concurrency && r.concurrency !== Number(concurrency))) continue;
  if (!r.spans) continue;
  console.log(`\n${r.chain} ${r.operation} c=${r.concurrency} ${r.facilitator}: ${r.requests} requests, client latency mean ${r.latencyMs.mean.toFixed(2)} ms (p50 ${r.latencyMs.p50.toFixed(2)})`);
  for (const [k, v] of Object.entries(r.spans)) {
    console.log(`  ${v.meanMs.toFixed(3).padStart(9)} ms x ${(v.count / r.requests).toFixed(2).padStart(5)}/req  = ${((v.meanMs * v.count) / r.requests).toFixed(3).padStart(8)} ms/req  ${k}`);
  }
}
