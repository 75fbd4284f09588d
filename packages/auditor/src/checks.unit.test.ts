import { describe, expect, it } from "vitest";
import { CheckName, fail, firstFailure, isVerified, notApplicable, notRun, pass, type CheckResult } from "./checks.ts";

const p = pass(CheckName.findAnchor, "found");
const na = notApplicable(CheckName.teeSignature, "no signature");
const f = fail(CheckName.blobId, "mismatch");
const nr = notRun(CheckName.recomputeRoot, "no dump");

describe("verdict", () => {
  it.each([
    ["all passed", [p], true, undefined],
    ["passed or not applicable", [p, na], true, undefined],
    ["one failure", [p, f, na], false, CheckName.blobId],
    ["a check that could not run counts against", [p, nr], false, CheckName.recomputeRoot],
    ["the real failure is named before checks it stopped", [p, nr, f], false, CheckName.blobId],
    ["no checks at all", [], false, undefined],
  ] as [string, CheckResult[], boolean, CheckName | undefined][])("%s", (_name, checks, verified, failed) => {
    expect(isVerified(checks)).toBe(verified);
    expect(firstFailure(checks)?.name).toBe(failed);
  });
});
