/**
 * The explorer page's in-browser verification code (plain JS, inlined in the page), run here in a
 * VM context and compared with viem and the auditor library on the same inputs.
 */
import { describe, expect, it } from "vitest";
import { encodeAbiParameters, keccak256, toHex, type Hex } from "viem";
import { hashPair, leafHash, leafTuple, leafTypes, processProof, ZERO_BYTES32, type InferenceLeaf } from "@facilitator/auditor";
import { refuseRpc } from "../packages/server/src/routes/explorer.ts";
import { loadExplorerVerify } from "./helpers/explorer-page.ts";

const browser = loadExplorerVerify();

const h = (s: string) => keccak256(toHex(s));

describe("Keccak-256 written for the page", () => {
  // Lengths around the 136-byte rate, where padding changes shape.
  it.each([0, 1, 31, 32, 55, 135, 136, 137, 271, 272, 273, 1000])("matches viem on %i bytes", (n) => {
    const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 31 + n) & 0xff);
    expect(browser.bytesToHex(browser.keccak256(bytes))).toBe(keccak256(bytes));
  });

  it("names the relay's events and anchoredAt like Solidity does", () => {
    expect(browser.TOPICS.batch).toBe(keccak256(toHex("BatchSettlement(bytes32,uint256,bytes)")));
    expect(browser.ANCHORED_AT).toBe(keccak256(toHex("anchoredAt(bytes32)")).slice(0, 10));
  });
});

describe("leaf encodings v2, v1 and the gateway's and the Merkle fold in the page agree with the auditor", () => {
  const v2 = { version: 2, settlementType: "settle-batch", metadataHash: ZERO_BYTES32 } as const;
  const leaves = [
    { ...v2, teeId: ZERO_BYTES32, inputHash: h("i"), outputHash: h("o"), timestamp: "0", teeSignature: "0x" as Hex },
    { ...v2, teeId: h("tee"), inputHash: h("i2"), outputHash: h("o2"), timestamp: "1700000000", teeSignature: `0x${"ab".repeat(65)}` as Hex },
    { ...v2, teeId: h("tee"), inputHash: h("i3"), outputHash: h("o3"), timestamp: (2n ** 256n - 1n).toString(), teeSignature: `0x${"cd".repeat(32)}` as Hex },
    // A type longer than one word and a non-zero metadata hash move the second dynamic value's offset.
    { version: 2, settlementType: "x".repeat(40), metadataHash: h("meta"), teeId: h("tee"), inputHash: h("i4"), outputHash: h("o4"), timestamp: "7", teeSignature: `0x${"ef".repeat(65)}` as Hex },
    { version: 1, teeId: h("tee"), inputHash: h("i5"), outputHash: h("o5"), timestamp: "1700000000", teeSignature: `0x${"ab".repeat(65)}` as Hex },
    // The tee-gateway's layout: an RSA-2048 signature (256 bytes) before the timestamp.
    { version: "gateway", teeId: h("gw"), inputHash: h("i6"), outputHash: h("o6"), timestamp: "1763779200", teeSignature: `0x${"5a".repeat(256)}` as Hex },
  ];
  it.each(leaves.map((l, i) => [i, l] as const))("leaf %i", (_i, leaf) => {
    const typed = { ...leaf, timestamp: BigInt(leaf.timestamp) } as InferenceLeaf;
    expect(browser.encodeLeaf(leaf)).toBe(encodeAbiParameters(leafTypes(typed.version).map((type) => ({ type })), leafTuple(typed)));
    expect(browser.leafHash(leaf)).toBe(leafHash(typed));
  });

  it("folds proofs with sorted pairs", () => {
    const proof = [h("a"), h("b"), h("c")];
    expect(browser.hashPair(h("x"), h("y"))).toBe(hashPair(h("x"), h("y")));
    expect(browser.processProof(h("leaf"), proof)).toBe(processProof(h("leaf"), proof));
  });

  it("refuses a malformed leaf rather than hashing something else", () => {
    expect(() => browser.encodeLeaf({ ...leaves[0], inputHash: "0x1234" })).toThrow(/inputHash is not 32-byte hex/);
    expect(() => browser.encodeLeaf({ ...leaves[0], timestamp: "-1" })).toThrow(/out of uint256 range/);
    expect(() => browser.encodeLeaf({ ...leaves[0], metadataHash: "0x00" })).toThrow(/metadataHash is not 32-byte hex/);
    expect(() => browser.encodeLeaf({ ...leaves[0], version: 3 })).toThrow(/unknown leaf version/);
  });
});

describe("the explorer's RPC proxy forwards only reads about the relay", () => {
  const relay = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
  const other = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
  it.each([
    ["eth_chainId", [], undefined],
    ["eth_getLogs", [{ address: relay.toLowerCase(), topics: [] }], undefined],
    ["eth_call", [{ to: relay, data: `${browser.ANCHORED_AT}${"ab".repeat(32)}` }, "latest"], undefined],
    ["eth_call", [{ to: relay, data: "0x" }, "latest"], /only for the relay's anchoredAt/],
    ["eth_getTransactionReceipt", [h("tx")], undefined],
    ["eth_getLogs", [{ address: other }], /only for the relay's address/],
    ["eth_getLogs", [{ address: [relay, other] }], /only for the relay's address/],
    ["eth_call", [{ to: other, data: "0x" }], /only to the relay/],
    ["eth_sendRawTransaction", ["0x00"], /method not allowed/],
    ["anvil_setBalance", [other, "0x1"], /method not allowed/],
  ] as [string, unknown[], RegExp | undefined][])("%s %j", (method, params, refused) => {
    const answer = refuseRpc({ method, params }, relay);
    if (refused) expect(answer).toMatch(refused);
    else expect(answer).toBeUndefined();
  });
});
