/** Terminal rendering of audit reports: one line per check, the verdict last and naming the failing check. */
import { CHECK_TITLES, firstFailure, type CheckResult } from "./checks.ts";
import type { AuditReport, ScanReport } from "./report.ts";

export interface Style {
  color: boolean;
}

const paint = (style: Style, code: number, text: string) => (style.color ? `\x1b[${code}m${text}\x1b[0m` : text);

function mark(check: CheckResult, style: Style): string {
  if (check.ok && !check.skipped) return paint(style, 32, "PASS");
  if (check.ok) return paint(style, 90, "n/a ");
  if (check.skipped) return paint(style, 33, "----");
  return paint(style, 31, "FAIL");
}

export function renderReport(report: AuditReport, style: Style): string {
  const lines: string[] = [];
  const s = report.subject;
  lines.push(s.kind === "inference" ? `Inference  input ${s.inputHash}\n           output ${s.outputHash}` : `Batch      root ${s.root}`);
  if (report.batch) {
    const b = report.batch;
    lines.push(`Anchor     BatchSettlement root ${b.root}, ${b.batchSize} leaves`);
    lines.push(`           tx ${b.transactionHash} (block ${b.blockNumber}) from ${b.emitter}`);
    lines.push(`           blob ${b.blobId}`);
    if (b.leaf) lines.push(`Leaf       #${b.leaf.index}${b.leaf.recordId ? ` record ${b.leaf.recordId}` : ""}, tee ${b.leaf.teeId}, timestamp ${b.leaf.timestamp}`);
  }
  if (report.settlement) {
    const t = report.settlement;
    lines.push(`Anchor     ${t.kind} in tx ${t.transactionHash} (block ${t.blockNumber}) from ${t.emitter}`);
  }
  lines.push("");
  for (const check of report.checks) {
    lines.push(`  ${mark(check, style)}  ${check.name.padEnd(19)} ${CHECK_TITLES[check.name]}`);
    lines.push(`        ${" ".repeat(19)} ${paint(style, 90, check.detail)}`);
  }
  for (const note of report.notes) lines.push(`  note: ${note}`);
  lines.push("");
  lines.push(verdict(report, style));
  return lines.join("\n");
}

function verdict(report: AuditReport, style: Style): string {
  if (report.verified && report.assurance === "attested") {
    return paint(style, 32, "VERIFIED") + " — anchored, and attested by an approved enclave: every check passed on evidence from the chain and the blob store.";
  }
  if (report.verified) {
    return paint(style, 32, "VERIFIED") + " — anchored: every check that applies passed on evidence from the chain and the blob store; no approved enclave's attestation was proven.";
  }
  const failed = firstFailure(report.checks);
  return `${paint(style, 31, "NOT VERIFIED")} — failing check: ${failed?.name ?? "?"}: ${failed?.detail ?? ""}`;
}

export function renderScan(report: ScanReport, style: Style): string {
  const lines = [`Scanned ${report.total} batches of blocks ${report.fromBlock}..${report.toBlock}: ${report.verifiedCount} verified, ${report.failures.length} not verified.`];
  for (const f of report.failures) {
    lines.push(`  ${paint(style, 31, "FAIL")}  ${f.root}  ${f.failedCheck}: ${f.detail}`);
    lines.push(`        tx ${f.transactionHash}, blob ${f.blobId}`);
  }
  lines.push(report.verified ? paint(style, 32, "ALL VERIFIED") : paint(style, 31, `NOT VERIFIED — ${report.failures.length} batch(es) fail`));
  return lines.join("\n");
}
