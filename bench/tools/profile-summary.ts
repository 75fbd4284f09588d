/**
 * Summarises a V8 CPU profile (`node --cpu-prof`, written by `BENCH_PROFILE=ours|reference|both pnpm bench`):
 * self time by package and by function, and total (inclusive) time of the functions that matter most.
 *
 *   pnpm exec tsx bench/tools/profile-summary.ts bench/results/profiles/ours/<file>.cpuprofile [top=25] [skipSeconds=0]
 *
 * skipSeconds leaves out the first seconds of the profile (process start-up: module loading).
 */
import { readFileSync } from "node:fs";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** Where a frame's code lives: a workspace package, an npm package, node itself, or V8. */
export function packageOf(url: string): string {
  if (!url) return "(native / V8)";
  const npm = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (npm) return npm[1]!;
  const ws = /\/(packages\/[^/]+|bench|test)\//.exec(url);
  if (ws) return ws[1]!;
  if (url.startsWith("node:")) return "node:" + url.slice(5).split("/")[0];
  return url.split("/").slice(-2).join("/");
}

function frameName(f: CallFrame): string {
  const file = f.url.replace(/^file:\/\//, "").replace(/.*node_modules\/(\.pnpm\/[^/]+\/node_modules\/)?/, "").replace(/.*\/main\//, "");
  return `${f.functionName || "(anonymous)"} ${file}:${f.lineNumber + 1}`;
}

function main(): void {
  const [file, topArg, skipArg] = process.argv.slice(2);
  const skipUs = Number(skipArg ?? 0) * 1e6;
  if (!file) throw new Error("usage: profile-summary.ts <file.cpuprofile> [top]");
  const top = Number(topArg ?? 25);
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const self = new Map<number, number>();
  let t = 0;
  profile.samples.forEach((id, i) => {
    t += profile.timeDeltas[i] ?? 0;
    if (t >= skipUs) self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  });
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const idle = [...self].filter(([id]) => byId.get(id)!.callFrame.functionName === "(idle)").reduce((a, [, v]) => a + v, 0);
  const busy = total - idle;

  const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);
  const byPackage = new Map<string, number>();
  const byFunction = new Map<string, number>();
  const inclusive = new Map<string, number>();
  // Each sample charged to the nearest frame of our own code (packages/*) on its stack: which of our
  // functions cause the time, library work they call included.
  const byOwnFrame = new Map<string, number>();
  for (const [id, ms] of self) {
    const node = byId.get(id)!;
    if (node.callFrame.functionName === "(idle)") continue;
    add(byPackage, packageOf(node.callFrame.url), ms);
    add(byFunction, frameName(node.callFrame), ms);
    // Inclusive: every distinct frame on the stack gets the sample once.
    const seen = new Set<string>();
    let own: string | undefined;
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const frame = byId.get(cur)!.callFrame;
      const name = frameName(frame);
      if (!own && /\/packages\//.test(frame.url) && !/node_modules/.test(frame.url)) own = name;
      if (!seen.has(name)) {
        seen.add(name);
        add(inclusive, name, ms);
      }
    }
    add(byOwnFrame, own ?? `(not under our code) ${packageOf(node.callFrame.url)}`, ms);
  }
  const pct = (v: number) => `${((100 * v) / busy).toFixed(1).padStart(5)}%`;
  const show = (title: string, m: Map<string, number>, n: number) => {
    console.log(`\n${title}`);
    for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, n)) console.log(`${pct(v)} ${v.toFixed(0).padStart(7)} ms  ${k}`);
  };
  console.log(`${file}\nprofiled ${(total / 1000).toFixed(1)} s, busy ${(busy / 1000).toFixed(1)} s (${((100 * busy) / total).toFixed(0)}%)`);
  show("self time by package", byPackage, top);
  show("self time by function", byFunction, top);
  show("time charged to the nearest frame of our code (packages/*)", byOwnFrame, top);
  show("total (inclusive) time by function", new Map([...inclusive].filter(([k]) => !k.startsWith("(root)"))), top);
}

main();
