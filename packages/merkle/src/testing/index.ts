/** For tests and bench/tree.ts: deterministic leaf values, and the reference the fast tree is held to. */
export * from "./values.ts";
export { StandardMerkleTree } from "@openzeppelin/merkle-tree";
