/**
 * Runs a declared list of checks. A check names the earlier checks whose output it reads; when one of
 * those could not give it (it "blocks"), the check is marked not run once, here, with that reason.
 */
import { notRun, type CheckName, type CheckResult } from "./checks.ts";

/** A result that leaves this check's dependants without input: each is marked "not run: because". */
export interface Blocking {
  result: CheckResult;
  because: string;
}

/** A check's result, blocking its dependants or not (a plain failure still lets them run). */
export type Outcome = CheckResult | Blocking;

export const blocking = (result: CheckResult, because: string): Blocking => ({ result, because });

export interface Check<C> {
  name: CheckName;
  /** Earlier checks whose output this one reads. */
  needs?: readonly CheckName[];
  run(ctx: C): Outcome | Promise<Outcome>;
}

/**
 * Starts each check as soon as the checks it needs are done, so independent chain and blob reads
 * overlap, and returns the results in the list's order.
 */
export async function runChecks<C>(checks: readonly Check<C>[], ctx: C): Promise<CheckResult[]> {
  validate(checks);
  const outcomes = new Map<CheckName, Promise<Outcome>>();
  for (const check of checks) {
    const needs = (check.needs ?? []).map((name) => outcomes.get(name)!);
    outcomes.set(
      check.name,
      (async () => {
        for (const need of needs) {
          const outcome = await need;
          // Not run blocks in turn, so a reason reaches every dependant, direct or not.
          if ("because" in outcome) return blocking(notRun(check.name, outcome.because), outcome.because);
        }
        return check.run(ctx);
      })(),
    );
  }
  return (await Promise.all(outcomes.values())).map((o) => ("because" in o ? o.result : o));
}

/** Checked before anything starts: a mistaken list throws rather than leaving a check waiting. */
function validate(checks: readonly Check<unknown>[]): void {
  const seen = new Set<CheckName>();
  for (const check of checks) {
    if (seen.has(check.name)) throw new Error(`check ${check.name} is listed twice`);
    const unknown = check.needs?.find((name) => !seen.has(name));
    if (unknown) throw new Error(`check ${check.name} needs ${unknown}, which is not listed before it`);
    seen.add(check.name);
  }
}
