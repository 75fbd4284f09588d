import { describe, expect, it } from "vitest";
import { CheckName, fail, notApplicable, notRun, pass } from "./checks.ts";
import { renderReport, renderScan } from "./render.ts";
import type { AuditReport, ScanReport } from "./report.ts";

const root = `0x${"aa".repeat(32)}` as const;
const tx = `0x${"bb".repeat(32)}` as const;
const batch = { root, batchSize: "3", blobId: "blob-1", emitter: "0x5FbDB2315678afecb367f032d93F642f64180aa3" as const, transactionHash: tx, blockNumber: "7" };

describe("renderReport", () => {
  it("shows each check with its mark and detail, and the verdict last", () => {
    const report: AuditReport = {
      verified: false,
      assurance: "none",
      failedCheck: "blob-id",
      subject: { kind: "batch", root },
      checks: [pass(CheckName.findAnchor, "found it"), fail(CheckName.blobId, "content hashes elsewhere"), notRun(CheckName.proof, "no tree"), notApplicable(CheckName.teeSignature, "no signature")],
      batch,
      notes: ["the hint was ignored"],
    };
    const text = renderReport(report, { color: false });
    expect(text).toContain(`Batch      root ${root}`);
    expect(text).toContain(`tx ${tx} (block 7) from ${batch.emitter}`);
    expect(text).toMatch(/PASS {2}find-anchor {9}anchoring event found on chain\n\s+found it/);
    expect(text).toMatch(/FAIL {2}blob-id/);
    expect(text).toMatch(/---- {2}proof[\s\S]*not run: no tree/);
    expect(text).toMatch(/n\/a {3}tee-signature/);
    expect(text).toContain("note: the hint was ignored");
    expect(text.split("\n").at(-1)).toBe("NOT VERIFIED — failing check: blob-id: content hashes elsewhere");
    expect(text).not.toContain("\x1b[");
    expect(renderReport({ ...report, verified: true, failedCheck: undefined, checks: [pass(CheckName.findAnchor, "x")] }, { color: true })).toContain("\x1b[32mVERIFIED");
    const verified = { ...report, verified: true, failedCheck: undefined, checks: [pass(CheckName.findAnchor, "x")] };
    expect(renderReport({ ...verified, assurance: "anchored" }, { color: false }).split("\n").at(-1)).toMatch(/^VERIFIED — anchored: .*no approved enclave's attestation was proven/);
    expect(renderReport({ ...verified, assurance: "attested" }, { color: false }).split("\n").at(-1)).toMatch(/^VERIFIED — anchored, and attested by an approved enclave/);
  });
});

describe("renderScan", () => {
  it("names every failing batch and its check", () => {
    const scan: ScanReport = {
      verified: false,
      fromBlock: "5",
      toBlock: "9",
      total: 2,
      verifiedCount: 1,
      failures: [{ root, transactionHash: tx, blobId: "blob-1", failedCheck: "fetch-dump", detail: "blob blob-1 is missing" }],
      batches: [],
    };
    const text = renderScan(scan, { color: false });
    expect(text).toContain("Scanned 2 batches of blocks 5..9: 1 verified, 1 not verified.");
    expect(text).toContain(`FAIL  ${root}  fetch-dump: blob blob-1 is missing`);
    expect(text.split("\n").at(-1)).toBe("NOT VERIFIED — 1 batch(es) fail");
  });
});
