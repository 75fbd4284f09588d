/**
 * `@facilitator/evm/testing`: test support, not part of the package's API. Local chains with a token
 * (EIP-3009 or ERC-2612 permit), a temporary ledger and the mechanism on them, and an RPC recorder.
 */
export * from "./chains.ts";
export * from "./mechanism.ts";
export * from "./rpc-recorder.ts";
