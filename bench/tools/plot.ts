/**
 * Throughput against concurrency as an SVG, one panel per (chain, payment method, operation), ours beside the reference.
 * `tsx bench/tools/plot.ts [results.json] [out.svg]` (defaults: the newest bench result, bench/results/throughput.svg).
 * Settle panels plot successful settles per second, the figure that matters to a resource server.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

interface Row { chain: string; method?: string; operation: string; facilitator: string; concurrency: number; throughput: number; requests: number; positive: number }

const dir = join(import.meta.dirname, "..", "results");
const input = process.argv[2] ?? join(dir, readdirSync(dir).filter((f) => /^\d{4}-.*Z\.json$/.test(f)).sort().at(-1)!);
const out = process.argv[3] ?? join(dir, "throughput.svg");
const rows: Row[] = JSON.parse(readFileSync(input, "utf8")).results;

// Results saved before there were several methods per chain have none: EVM's was EIP-3009.
const method = (r: Row) => r.method ?? (r.chain === "evm" ? "eip3009" : "exact");
const panels = [...new Set(rows.map((r) => `${r.chain} ${method(r)} ${r.operation}`))];
const colours: Record<string, string> = { ours: "#1b7f3b", reference: "#b03a2e", "reference-nm": "#d68910" };
const W = 360, H = 240, PAD = 44;
const svg: string[] = [];
const perSecond = (r: Row) => (r.operation === "settle" ? (r.throughput * r.positive) / r.requests : r.throughput);

panels.forEach((panel, i) => {
  const [chain, kind, operation] = panel.split(" ");
  const mine = rows.filter((r) => r.chain === chain && method(r) === kind && r.operation === operation);
  const levels = [...new Set(mine.map((r) => r.concurrency))].sort((a, b) => a - b);
  const top = Math.max(...mine.map(perSecond)) * 1.1;
  const x0 = (i % 2) * (W + 20), y0 = Math.floor(i / 2) * (H + 20);
  const x = (c: number) => x0 + PAD + (levels.indexOf(c) / Math.max(1, levels.length - 1)) * (W - 2 * PAD);
  const y = (v: number) => y0 + H - PAD + -(v / top) * (H - 2 * PAD);
  svg.push(`<text x="${x0 + W / 2}" y="${y0 + 18}" text-anchor="middle" font-weight="bold">${chain.toUpperCase()} ${kind} ${operation} (${operation === "settle" ? "successful/s" : "req/s"})</text>`);
  svg.push(`<line x1="${x0 + PAD}" y1="${y0 + H - PAD}" x2="${x0 + W - PAD}" y2="${y0 + H - PAD}" stroke="#444"/><line x1="${x0 + PAD}" y1="${y0 + PAD}" x2="${x0 + PAD}" y2="${y0 + H - PAD}" stroke="#444"/>`);
  for (const c of levels) svg.push(`<text x="${x(c)}" y="${y0 + H - PAD + 16}" text-anchor="middle">c=${c}</text>`);
  for (const f of [0, 0.5, 1]) svg.push(`<text x="${x0 + PAD - 6}" y="${y(top * f) + 4}" text-anchor="end">${Math.round(top * f)}</text>`);
  const facilitators = [...new Set(mine.map((r) => r.facilitator))];
  facilitators.forEach((f, k) => {
    const pts = levels.map((c) => mine.find((r) => r.facilitator === f && r.concurrency === c)).filter((r): r is Row => !!r);
    svg.push(`<polyline fill="none" stroke-width="2" stroke="${colours[f] ?? "#555"}" points="${pts.map((r) => `${x(r.concurrency)},${y(perSecond(r))}`).join(" ")}"/>`);
    for (const r of pts) svg.push(`<circle cx="${x(r.concurrency)}" cy="${y(perSecond(r))}" r="3" fill="${colours[f] ?? "#555"}"/>`);
    svg.push(`<text x="${x0 + PAD + 6}" y="${y0 + PAD + 4 + k * 14}" fill="${colours[f] ?? "#555"}">${f}</text>`);
  });
});

const rowsOfPanels = Math.ceil(panels.length / 2);
writeFileSync(
  out,
  `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W + 20}" height="${rowsOfPanels * (H + 20)}" font-family="sans-serif" font-size="11">\n<rect width="100%" height="100%" fill="white"/>\n${svg.join("\n")}\n</svg>\n`,
);
console.log(`wrote ${out} from ${input}`);
