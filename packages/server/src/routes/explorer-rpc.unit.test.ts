import { encodeFunctionData, parseAbi } from "viem";
import { describe, expect, it } from "vitest";
import { planRpcCall } from "./explorer-rpc.ts";

const relay = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
const other = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const root: `0x${string}` = `0x${"ab".repeat(32)}`;
const anchoredAt = encodeFunctionData({ abi: parseAbi(["function anchoredAt(bytes32) view returns (uint256)"]), args: [root] });
const plan = (method: string, params: unknown, head?: bigint) => planRpcCall({ jsonrpc: "2.0", id: 1, method, params }, relay, { maxBlockRange: 100n, head });

describe("planRpcCall", () => {
  it("rebuilds an anchoredAt call from its checked fields, to the configured relay", () => {
    expect(plan("eth_call", [{ to: relay.toLowerCase(), data: anchoredAt.toUpperCase().replace("0X", "0x") }])).toEqual({
      kind: "forward",
      method: "eth_call",
      params: [{ to: relay, data: anchoredAt }, "latest"],
    });
    expect(plan("eth_call", [{ to: relay, input: anchoredAt }, "0x10"])).toMatchObject({ params: [{ to: relay, data: anchoredAt }, "0x10"] });
  });

  it.each([
    ["a state override", [{ to: relay, data: anchoredAt }, "latest", { [relay]: { code: "0x00" } }], /without state or block overrides/],
    ["a block override object", [{ to: relay, data: anchoredAt }, { blockNumber: "0x1" }], /block must be a block number or tag/],
    ["another target", [{ to: other, data: anchoredAt }], /only to the relay/],
    ["a target list", [{ to: [relay], data: anchoredAt }], /only to the relay/],
    ["another selector", [{ to: relay, data: `0x12345678${root.slice(2)}` }], /only for the relay's anchoredAt\(bytes32\)/],
    ["short arguments", [{ to: relay, data: anchoredAt.slice(0, -2) }], /takes exactly 32 bytes/],
    ["data and input that differ", [{ to: relay, data: anchoredAt, input: "0x" }], /data and input differ/],
    ["a gas field", [{ to: relay, data: anchoredAt, gas: "0x1" }], /field "gas" is not forwarded/],
    ["no call object", ["latest"], /takes a call object/],
  ])("refuses eth_call with %s", (_name, params, message) => {
    const p = plan("eth_call", params);
    expect(p.kind).toBe("refuse");
    if (p.kind === "refuse") expect(p.reason).toMatch(message);
  });

  it("bounds eth_getLogs: tags resolved against the head, numbers forwarded, the span checked", () => {
    expect(plan("eth_getLogs", [{ address: relay }])).toEqual({ kind: "forward", method: "eth_getLogs", params: [{ address: relay, topics: [], fromBlock: "latest", toBlock: "latest" }] });
    expect(plan("eth_getLogs", [{ address: relay, fromBlock: "0x0" }])).toEqual({ kind: "needs-head" });
    expect(plan("eth_getLogs", [{ address: relay, fromBlock: "0x0" }], 99n)).toMatchObject({ kind: "forward", params: [{ fromBlock: "0x0", toBlock: "0x63" }] });
    expect(plan("eth_getLogs", [{ address: relay, fromBlock: "0x0" }], 100n)).toMatchObject({ kind: "refuse", reason: expect.stringMatching(/spans 101 blocks; this proxy reads at most 100/) });
    expect(plan("eth_getLogs", [{ address: relay, fromBlock: "0x10", toBlock: "0x5" }])).toMatchObject({ kind: "refuse", reason: expect.stringMatching(/fromBlock is after toBlock/) });
    expect(plan("eth_getLogs", [{ address: relay, fromBlock: "0x0", toBlock: "0xffffffffffffffff" }])).toMatchObject({ kind: "refuse" });
    expect(plan("eth_getLogs", [{ address: relay, blockHash: root, topics: [[root, null], null] }])).toEqual({
      kind: "forward",
      method: "eth_getLogs",
      params: [{ address: relay, topics: [[root, null], null], blockHash: root }],
    });
  });

  it.each([
    ["another address", [{ address: other }], /only for the relay's address/],
    ["no address", [{ fromBlock: "latest" }], /only for the relay's address/],
    ["blockHash with a range", [{ address: relay, blockHash: root, fromBlock: "0x1" }], /blockHash or a block range, not both/],
    ["five topics", [{ address: relay, topics: [null, null, null, null, null] }], /topics must be up to 4/],
    ["a long topic list", [{ address: relay, topics: [Array(9).fill(root)] }], /topics must be/],
    ["an unknown field", [{ address: relay, limit: 10 }], /field "limit" is not forwarded/],
    ["two filters", [{ address: relay }, { address: relay }], /takes one filter object/],
    ["a finalized tag", [{ address: relay, toBlock: "finalized" }], /block numbers, latest or earliest/],
  ])("refuses eth_getLogs with %s", (_name, params, message) => {
    const p = plan("eth_getLogs", params, 1_000n);
    expect(p.kind).toBe("refuse");
    if (p.kind === "refuse") expect(p.reason).toMatch(message);
  });

  it("forwards the harmless reads with no extra parameters, and nothing else", () => {
    expect(plan("eth_chainId", undefined)).toEqual({ kind: "forward", method: "eth_chainId", params: [] });
    expect(plan("eth_blockNumber", [])).toEqual({ kind: "forward", method: "eth_blockNumber", params: [] });
    expect(plan("eth_blockNumber", ["latest"])).toMatchObject({ kind: "refuse" });
    expect(plan("eth_getTransactionReceipt", [root])).toEqual({ kind: "forward", method: "eth_getTransactionReceipt", params: [root] });
    expect(plan("eth_getTransactionReceipt", [root, "x"])).toMatchObject({ kind: "refuse" });
    for (const method of ["eth_sendRawTransaction", "eth_estimateGas", "debug_traceCall", "eth_getBalance", "anvil_setCode", "__proto__"]) {
      expect(plan(method, [])).toMatchObject({ kind: "refuse", code: -32601 });
    }
    expect(planRpcCall([{ method: "eth_chainId" }], relay, { maxBlockRange: 10n })).toMatchObject({ kind: "refuse", code: -32601 });
    expect(planRpcCall(null, relay, { maxBlockRange: 10n })).toMatchObject({ kind: "refuse" });
  });

  it("forwards the TEE registry's two reads when a registry is configured, and nothing else of it", () => {
    const registry = "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0";
    const abi = parseAbi(["function getTee(bytes32) view returns (uint256)", "function measurementStatus(uint8, bytes32) view returns (uint256)", "function hasRole(bytes32, address) view returns (bool)"]);
    const getTee = encodeFunctionData({ abi, functionName: "getTee", args: [root] });
    const status = encodeFunctionData({ abi, functionName: "measurementStatus", args: [1, root] });
    const withRegistry = (params: unknown[]) => planRpcCall({ method: "eth_call", params }, relay, { maxBlockRange: 100n, registry });
    expect(withRegistry([{ to: registry.toLowerCase(), data: getTee }])).toEqual({ kind: "forward", method: "eth_call", params: [{ to: registry, data: getTee }, "latest"] });
    expect(withRegistry([{ to: registry, data: status }, "0x5"])).toMatchObject({ kind: "forward", params: [{ to: registry, data: status }, "0x5"] });
    expect(withRegistry([{ to: relay, data: anchoredAt }])).toMatchObject({ kind: "forward" });
    expect(withRegistry([{ to: registry, data: encodeFunctionData({ abi, functionName: "hasRole", args: [root, relay] }) }])).toMatchObject({
      kind: "refuse",
      reason: "eth_call is proxied only for the TEE registry's getTee(bytes32), measurementStatus(uint8,bytes32)",
    });
    expect(withRegistry([{ to: registry, data: status.slice(0, -2) }])).toMatchObject({ kind: "refuse", reason: expect.stringMatching(/takes exactly 64 bytes/) });
    expect(withRegistry([{ to: relay, data: getTee }])).toMatchObject({ kind: "refuse", reason: expect.stringMatching(/only for the relay's anchoredAt/) });
    expect(withRegistry([{ to: other, data: getTee }])).toMatchObject({ kind: "refuse", reason: "eth_call is proxied only to the relay and the TEE registry" });
    expect(plan("eth_call", [{ to: registry, data: getTee }])).toMatchObject({ kind: "refuse", reason: "eth_call is proxied only to the relay" });
  });
});
