/**
 * A run over time as an SVG: records/s accepted at the door and anchored (one sample a second, each the
 * change since the one before), and the age of the queue's oldest waiting record, on a second axis.
 */
export interface Sample {
  /** Seconds since the load started. */
  t: number;
  /** Records the door acknowledged so far. */
  accepted: number;
  /** Records marked anchored so far. */
  anchored: number;
  queued: number;
  batched: number;
  /** Age of the oldest record waiting for a batch (0: none waits). */
  oldestAgeS: number;
}

const W = 760, H = 300, PAD = 54;

export function timelineSvg(title: string, samples: readonly Sample[], loadSeconds: number): string {
  const rates = samples.slice(1).map((s, i) => {
    const dt = s.t - samples[i]!.t || 1;
    return { t: s.t, accepted: (s.accepted - samples[i]!.accepted) / dt, anchored: (s.anchored - samples[i]!.anchored) / dt, age: s.oldestAgeS };
  });
  const tMax = Math.max(1, ...samples.map((s) => s.t));
  const rateTop = niceTop(Math.max(1, ...rates.flatMap((r) => [r.accepted, r.anchored])));
  const ageTop = niceTop(Math.max(1, ...rates.map((r) => r.age)));
  const x = (t: number) => PAD + (t / tMax) * (W - 2 * PAD);
  const yRate = (v: number) => H - PAD - (v / rateTop) * (H - 2 * PAD);
  const yAge = (v: number) => H - PAD - (v / ageTop) * (H - 2 * PAD);
  const line = (points: string, colour: string, dash = "") => `<polyline fill="none" stroke-width="2" stroke="${colour}"${dash ? ` stroke-dasharray="${dash}"` : ""} points="${points}"/>`;
  const out = [
    `<text x="${W / 2}" y="18" text-anchor="middle" font-weight="bold">${escape(title)}</text>`,
    `<line x1="${PAD}" y1="${H - PAD}" x2="${W - PAD}" y2="${H - PAD}" stroke="#444"/>`,
    `<line x1="${PAD}" y1="${PAD}" x2="${PAD}" y2="${H - PAD}" stroke="#444"/><line x1="${W - PAD}" y1="${PAD}" x2="${W - PAD}" y2="${H - PAD}" stroke="#444"/>`,
    `<rect x="${x(0)}" y="${PAD}" width="${x(loadSeconds) - x(0)}" height="${H - 2 * PAD}" fill="#eef" />`,
    `<text x="${x(loadSeconds / 2)}" y="${PAD + 12}" text-anchor="middle" fill="#668">load through the door</text>`,
  ];
  for (const f of [0, 0.5, 1]) {
    out.push(`<text x="${PAD - 6}" y="${yRate(rateTop * f) + 4}" text-anchor="end">${Math.round(rateTop * f).toLocaleString("en-US")}</text>`);
    out.push(`<text x="${W - PAD + 6}" y="${yAge(ageTop * f) + 4}">${round1(ageTop * f)} s</text>`);
  }
  for (let t = 0; t <= tMax; t += tickStep(tMax)) out.push(`<text x="${x(t)}" y="${H - PAD + 16}" text-anchor="middle">${t} s</text>`);
  out.push(line(rates.map((r) => `${x(r.t)},${yRate(r.accepted)}`).join(" "), "#1f5fa8"));
  out.push(line(rates.map((r) => `${x(r.t)},${yRate(r.anchored)}`).join(" "), "#1b7f3b"));
  out.push(line(rates.map((r) => `${x(r.t)},${yAge(r.age)}`).join(" "), "#b03a2e", "5,3"));
  const legend: [string, string][] = [["#1f5fa8", "accepted at the door, records/s"], ["#1b7f3b", "anchored, records/s"], ["#b03a2e", "oldest waiting record, age (right axis)"]];
  legend.forEach(([colour, label], i) => out.push(`<text x="${PAD + 8}" y="${PAD + 30 + i * 14}" fill="${colour}">${label}</text>`));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">\n<rect width="100%" height="100%" fill="white"/>\n${out.join("\n")}\n</svg>\n`;
}

function niceTop(v: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * magnitude).find((m) => m >= v)!;
}

const tickStep = (tMax: number) => (tMax <= 30 ? 5 : tMax <= 120 ? 15 : tMax <= 300 ? 30 : 60);
const round1 = (v: number) => Math.round(v * 10) / 10;
const escape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
