export * from "./abi.ts";
export * from "./keccak.ts";
export * from "./tree.ts";
export * from "./compact.ts";
export * from "./thread.ts";
