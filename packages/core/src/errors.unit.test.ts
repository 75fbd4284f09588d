import { describe, expect, it } from "vitest";
import { FacilitatorError } from "./errors.ts";
import { NetworkConfigError } from "./networks.ts";

describe("FacilitatorError", () => {
  it.each([
    ["a short message alone", "cannot listen", {}, "cannot listen"],
    ["details after a colon", "cannot reach the RPC at http://x", { details: "ECONNREFUSED" }, "cannot reach the RPC at http://x: ECONNREFUSED"],
    ["further lines after a colon", "invalid configuration", { metaMessages: ["  - PORT: not a number", "  - HOST: empty"] }, "invalid configuration:\n  - PORT: not a number\n  - HOST: empty"],
    ["details and further lines", "start-up checks failed", { details: "2 networks", metaMessages: ["a", "b"] }, "start-up checks failed: 2 networks:\na\nb"],
  ] as const)("composes its message from %s", (_, short, opts, message) => {
    const e = new FacilitatorError(short, opts);
    expect(e.message).toBe(message);
    expect(e.shortMessage).toBe(short);
    expect(e.details).toBe((opts as { details?: string }).details);
    expect(e.metaMessages).toEqual((opts as { metaMessages?: string[] }).metaMessages ?? []);
  });

  it("is the base of operator errors, named after their class, keeping a cause", () => {
    const cause = new Error("underneath");
    const e = new NetworkConfigError("unknown network x", { cause });
    expect(e).toBeInstanceOf(FacilitatorError);
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe("NetworkConfigError");
    expect(e.cause).toBe(cause);
    expect(String(e)).toBe("NetworkConfigError: unknown network x");
  });
});
