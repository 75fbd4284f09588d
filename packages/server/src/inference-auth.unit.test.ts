import { describe, expect, it } from "vitest";
import { inferenceCaller } from "./inference-auth.ts";

const INFERENCE = "inference-key-0123";
const PAYMENT = "payment-key-4567";
const caller = inferenceCaller([INFERENCE, "another-inference-key"]);

describe("inferenceCaller: who posted the record in /settle headers", () => {
  it.each([
    ["X-Inference-Authorization with an inference key, beside the payment key", { authorization: `Bearer ${PAYMENT}`, "x-inference-authorization": `Bearer ${INFERENCE}` }, true],
    ["X-Inference-Authorization in any case, bearer in any case", { "X-Inference-Authorization": `bearer ${INFERENCE}` }, true],
    ["Authorization carrying an inference key (no payment key in use)", { authorization: `Bearer ${INFERENCE}` }, true],
    ["x-api-key carrying an inference key", { "x-api-key": INFERENCE }, true],
    ["the second configured key", { "x-inference-authorization": "Bearer another-inference-key" }, true],
    ["only the payment key", { authorization: `Bearer ${PAYMENT}` }, false],
    ["no credential at all", {}, false],
    ["a wrong inference key", { "x-inference-authorization": "Bearer not-the-key" }, false],
    ["an inference key without the Bearer scheme", { "x-inference-authorization": INFERENCE }, false],
    ["a prefix of the key", { "x-inference-authorization": `Bearer ${INFERENCE.slice(0, -1)}` }, false],
    ["the key with trailing text", { "x-inference-authorization": `Bearer ${INFERENCE} extra` }, false],
  ])("%s -> %s", (_name, headers, authenticated) => {
    expect(caller(headers).authenticated).toBe(authenticated);
  });

  it("says when an X-Inference-Authorization was presented, so a refusal can name it", () => {
    expect(caller({ "x-inference-authorization": "Bearer wrong" })).toEqual({ authenticated: false, presentedInferenceHeader: true });
    expect(caller({ authorization: "Bearer wrong" })).toEqual({ authenticated: false, presentedInferenceHeader: false });
  });

  it("authenticates nobody when no inference key is configured", () => {
    const none = inferenceCaller([]);
    expect(none({ "x-inference-authorization": "Bearer " }).authenticated).toBe(false);
    expect(none({ authorization: `Bearer ${INFERENCE}` }).authenticated).toBe(false);
    expect(inferenceCaller([""])({ "x-api-key": "" }).authenticated).toBe(false);
  });

  it("reads the first value of a repeated header", () => {
    expect(caller({ "x-inference-authorization": [`Bearer ${INFERENCE}`, "Bearer wrong"] }).authenticated).toBe(true);
  });
});
