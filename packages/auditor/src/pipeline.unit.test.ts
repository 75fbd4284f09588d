import { describe, expect, it } from "vitest";
import { CheckName, fail, notRun, pass, type CheckResult } from "./checks.ts";
import { blocking, runChecks, type Check, type Outcome } from "./pipeline.ts";

const { findAnchor: A, fetchDump: B, blobId: C, recomputeRoot: D, rootMatchesEvent: E, relayEvent: F } = CheckName;

type Step = [name: CheckName, needs: CheckName[], outcome: Outcome];

/** Checks that record which of them ran and in which order they finished; the `slow` ones finish last. */
function build(steps: Step[], slow: CheckName[] = []) {
  const ran: CheckName[] = [];
  const done: CheckName[] = [];
  const checks: Check<void>[] = steps.map(([name, needs, outcome]) => ({
    name,
    needs,
    run: async () => {
      ran.push(name);
      if (slow.includes(name)) await new Promise((r) => setTimeout(r, 20));
      done.push(name);
      return outcome;
    },
  }));
  return { checks, ran, done };
}

describe("runChecks", () => {
  it.each<[string, Step[], CheckResult[], CheckName[]]>([
    ["every check passes, in order", [[A, [], pass(A, "a")], [B, [A], pass(B, "b")], [C, [], pass(C, "c")]], [pass(A, "a"), pass(B, "b"), pass(C, "c")], [A, B, C]],
    [
      "a blocking check marks its dependants, direct and not, not run once each",
      [[A, [], blocking(fail(A, "gone"), "no dump")], [B, [A], pass(B, "b")], [C, [B], pass(C, "c")], [D, [A, B], pass(D, "d")]],
      [fail(A, "gone"), notRun(B, "no dump"), notRun(C, "no dump"), notRun(D, "no dump")],
      [A],
    ],
    [
      "a check that needs nothing blocked still runs",
      [[A, [], blocking(fail(A, "gone"), "no dump")], [B, [A], pass(B, "b")], [C, [], fail(C, "own failure")], [D, [C], pass(D, "d")]],
      [fail(A, "gone"), notRun(B, "no dump"), fail(C, "own failure"), pass(D, "d")],
      [A, C, D],
    ],
    [
      "a plain failure lets its dependants run",
      [[A, [], fail(A, "differs")], [B, [A], pass(B, "b")]],
      [fail(A, "differs"), pass(B, "b")],
      [A, B],
    ],
    [
      "a dependant of two blocked checks takes the first one's reason",
      [[A, [], blocking(fail(A, "x"), "first")], [B, [], blocking(fail(B, "y"), "second")], [C, [B, A], pass(C, "c")]],
      [fail(A, "x"), fail(B, "y"), notRun(C, "second")],
      [A, B],
    ],
    [
      "a blocked check deep in the list stops only its own branch",
      [[A, [], pass(A, "a")], [B, [A], pass(B, "b")], [C, [B], pass(C, "c")], [D, [B], blocking(fail(D, "bad"), "no tree")], [E, [D], pass(E, "e")], [F, [A], pass(F, "f")]],
      [pass(A, "a"), pass(B, "b"), pass(C, "c"), fail(D, "bad"), notRun(E, "no tree"), pass(F, "f")],
      [A, B, C, D, F],
    ],
  ])("%s", async (_name, steps, results, ran) => {
    const run = build(steps);
    expect(await runChecks(run.checks, undefined)).toEqual(results);
    expect([...run.ran].sort()).toEqual([...ran].sort());
  });

  it("keeps the list's order when later checks finish first, and overlaps independent ones", async () => {
    const { checks, done } = build([[A, [], pass(A, "a")], [B, [], pass(B, "b")], [C, [B], pass(C, "c")]], [A]);
    const results = await runChecks(checks, undefined);
    expect(results.map((r) => r.name)).toEqual([A, B, C]);
    expect(done).toEqual([B, C, A]);
  });

  it("runs a dependant only after what it needs", async () => {
    const { checks, ran, done } = build([[A, [], pass(A, "a")], [B, [A], pass(B, "b")], [C, [], pass(C, "c")]], [A]);
    await runChecks(checks, undefined);
    expect([ran, done]).toEqual([[A, C, B], [C, A, B]]);
  });

  it("hands every check the same context", async () => {
    const ctx = { seen: [] as CheckName[] };
    const checks: Check<typeof ctx>[] = [A, B].map((name) => ({ name, run: (c) => (c.seen.push(name), pass(name, "")) }));
    await runChecks(checks, ctx);
    expect(ctx.seen).toEqual([A, B]);
  });

  it.each<[string, Step[], RegExp]>([
    ["a need listed after the check", [[A, [B], pass(A, "a")], [B, [], pass(B, "b")]], /find-anchor needs fetch-dump, which is not listed before it/],
    ["a need not listed at all", [[A, [], pass(A, "a")], [B, [C], pass(B, "b")]], /fetch-dump needs blob-id/],
    ["a name listed twice", [[A, [], pass(A, "a")], [A, [], pass(A, "b")]], /find-anchor is listed twice/],
  ])("refuses %s before running anything", async (_name, steps, error) => {
    const { checks, ran } = build(steps);
    await expect(runChecks(checks, undefined)).rejects.toThrow(error);
    expect(ran).toEqual([]);
  });
});
