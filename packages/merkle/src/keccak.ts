/**
 * keccak256 over raw bytes through hash-wasm's WebAssembly Keccak: about 0.8 µs for a 64-byte node,
 * where @noble/hashes' pure-JS keccak (viem's, and close to OpenZeppelin's) takes about 10 µs and the
 * `keccak` native addon 1.5-3 µs (its N-API call costs more than the hash). Measured in bench/tree.ts.
 *
 * WebAssembly instantiates asynchronously, and a top-level await would break every CommonJS importer
 * (tsx runs scripts/ as CommonJS), so hashing stays synchronous: until `keccakReady` resolves (the first
 * milliseconds after import) digests come from @noble/hashes, the same function, only slower.
 */
import { keccak_256 } from "@noble/hashes/sha3";
import { createKeccak, type IHasher } from "hash-wasm";

let wasm: IHasher | undefined;

/** Resolves once hashing runs on WebAssembly (or, where it cannot, stays on the pure-JS keccak). */
export const keccakReady: Promise<void> = createKeccak(256).then(
  (hasher) => void (wasm = hasher),
  () => undefined,
);

export const keccakBackend = (): "wasm" | "js" => (wasm ? "wasm" : "js");

export function keccak256(data: Uint8Array): Uint8Array {
  if (!wasm) return keccak_256(data);
  wasm.init();
  wasm.update(data);
  return wasm.digest("binary");
}

/** keccak256(keccak256(data)): OpenZeppelin's standard leaf hash of an encoded leaf. */
export function doubleKeccak256(data: Uint8Array): Uint8Array {
  return keccak256(keccak256(data));
}
