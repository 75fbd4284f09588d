/**
 * The fast tree against its reference, OpenZeppelin's StandardMerkleTree: random batches of every leaf
 * layout (roots, node arrays, dumps to the byte, every proof), fixed sizes up to 2,049 live, and the
 * library's own results for 16,384 and 65,536 leaves as recorded constants (the library needs 5-20 s
 * for those; `MERKLE_OZ_GOLDEN=1` recomputes them with it).
 */
import { createHash } from "node:crypto";
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import fc from "fast-check";
import { encodeAbiParameters, keccak256 as viemKeccak, type Hex as ViemHex } from "viem";
import { describe, expect, it } from "vitest";
import { LeafEncoder } from "./abi.ts";
import { keccak256, keccakBackend, keccakReady } from "./keccak.ts";
import { batchValuesV2, TYPES_V1, TYPES_V2 } from "./testing/values.ts";
import { buildTree, hashPair, hexNodes, leafHash, nodeProof, processProof, siblingPath, sortedSlots, standardDump, toHex, verifyProof, type Hex } from "./tree.ts";

await keccakReady;

const hex = (b: Uint8Array, upper = false) => `0x${Buffer.from(b).toString("hex")[upper ? "toUpperCase" : "toLowerCase"]()}`;
const hexArb = (min: number, max: number) => fc.tuple(fc.uint8Array({ minLength: min, maxLength: max }), fc.boolean()).map(([b, upper]) => hex(b, upper));
const FIELD: Record<string, fc.Arbitrary<unknown>> = {
  bytes32: hexArb(32, 32),
  address: hexArb(20, 20),
  bytes: hexArb(0, 90),
  string: fc.string({ unit: "grapheme", maxLength: 24 }),
  // StandardMerkleTree takes a uint256 as a bigint, a decimal string or a 0x string.
  uint256: fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 256n - 1n }), fc.bigInt({ min: 0n, max: 2n ** 64n }).map(String), fc.nat().map((n) => `0x${n.toString(16)}`)),
};
const LAYOUTS: [string, string[]][] = [
  ["leaf encoding v2", TYPES_V2],
  ["leaf encoding v1", TYPES_V1],
  ["a lone bytes32", ["bytes32"]],
  ["address, uint256, string, bytes", ["address", "uint256", "string", "bytes"]],
];
/** A batch of 1-40 values, some repeated (equal leaves must keep the library's order). */
const batchArb = (types: string[]) =>
  fc
    .tuple(fc.array(fc.tuple(...types.map((t) => FIELD[t]!)), { minLength: 1, maxLength: 40 }), fc.array(fc.nat(), { maxLength: 3 }))
    .map(([values, repeats]) => [...values, ...repeats.map((r) => values[r % values.length]!)] as unknown[][]);

const ours = (types: string[], values: unknown[][]) => {
  const built = buildTree(types, values);
  const nodes = hexNodes(built.nodes);
  return {
    nodes,
    dump: standardDump(types, values, nodes, built.treeIndices),
    proof: (i: number) => siblingPath(nodes, built.treeIndices[i]!),
    proofOffBytes: (i: number) => nodeProof(built.nodes, built.treeIndices[i]!),
  };
};

describe("abi encoding of a leaf", () => {
  it.each(LAYOUTS)("%s is viem's encodeAbiParameters, byte for byte", (_name, types) => {
    const encoder = new LeafEncoder(types);
    fc.assert(
      fc.property(fc.tuple(...types.map((t) => FIELD[t]!)), (value) => {
        // viem wants checksummed or lower-case addresses, and bigints.
        const viemValue = value.map((v, i) => (types[i] === "uint256" ? BigInt(v as string) : types[i] === "address" ? (v as string).toLowerCase() : v));
        const expected = encodeAbiParameters(types.map((type) => ({ type })), viemValue);
        expect(hex(encoder.encode(value))).toBe(expected.toLowerCase());
      }),
      { numRuns: 60 },
    );
  });

  it.each([
    ["a short bytes32", ["bytes32"], ["0x1234"], /field 0 \(bytes32\) is not a 0x-prefixed bytes32/],
    ["a bytes32 without 0x", ["bytes32"], ["ab".repeat(33)], /not a 0x-prefixed bytes32/],
    ["a non-hex digit", ["bytes32"], [`0x${"a".repeat(63)}g`], /not a hex digit/],
    ["odd-length bytes", ["bytes"], ["0xabc"], /not 0x-prefixed hex bytes/],
    ["a number for uint256", ["uint256"], [5], /not an integer string or bigint/],
    ["a negative uint256", ["uint256"], [-1n], /out of range/],
    ["a uint256 past 2^256-1", ["uint256"], [2n ** 256n], /out of range/],
    ["a decimal with a sign", ["uint256"], ["-5"], /not an integer string/],
    ["an empty uint256", ["uint256"], [""], /not an integer string/],
    ["a string that is not one", ["string"], [7], /field 0 \(string\) is not a string/],
    ["a missing field", ["bytes32", "bytes"], [`0x${"00".repeat(32)}`], /needs 2 fields/],
  ] as [string, string[], unknown[], RegExp][])("refuses %s", (_name, types, value, error) => {
    expect(() => new LeafEncoder(types).encode(value)).toThrow(error);
  });

  it("refuses leaf types it does not encode", () => {
    expect(() => new LeafEncoder(["bytes32", "uint8"])).toThrow(/"uint8" is not supported/);
    expect(() => new LeafEncoder([])).toThrow(/at least one field/);
  });
});

describe("the tree is StandardMerkleTree's", () => {
  it.each(LAYOUTS)("%s: random batches give the library's root, nodes, dump and proofs", (_name, types) => {
    fc.assert(
      fc.property(batchArb(types), (values) => {
        const oz = StandardMerkleTree.of(values, types);
        const t = ours(types, values);
        expect(t.dump).toEqual(oz.dump()); // deep equality: JSON cannot hold the bigint values
        values.forEach((value, i) => {
          expect(t.proof(i)).toEqual(oz.getProof(i));
          expect(t.proofOffBytes(i)).toEqual(oz.getProof(i));
          expect(verifyProof(oz.root, types, value, t.proof(i))).toBe(true);
        });
        // A proof is for its own leaf only.
        if (values.length > 1 && leafHash(types, values[0]!) !== leafHash(types, values[1]!)) expect(verifyProof(oz.root, types, values[1]!, t.proof(0))).toBe(false);
      }),
      { numRuns: 20 },
    );
  });

  it.each([
    [1_025, TYPES_V2],
    [2_049, ["bytes32"]],
  ] as [number, string[]][])("%i leaves, fixed: the library's dump", (n, types) => {
    const values = batchValuesV2(n, `fixed${n}`).map((v) => v.slice(0, types.length));
    expect(JSON.stringify(ours(types, values).dump)).toBe(JSON.stringify(StandardMerkleTree.of(values, types).dump()));
  });

  // Recorded from StandardMerkleTree.of(batchValuesV2(n, "golden"), TYPES_V2) with @openzeppelin/merkle-tree 1.0.8.
  const GOLDEN: [number, string, string][] = [
    [16_384, "0xaa4d28deb9603d6d6a02885a6714641aa00b5ab6b4b9a1dfe69a44e43ddbd891", "5c1a87b5e48b6337d0765bfa0f78b7b98175e2109e25ea68c555125feec2393d"],
    [65_536, "0x34324a360eba016e15da2348e31a3147d8d03f8a039fd82999bb088d06b9c8ea", "002483fa32df8b8b7540cee8b1b32b24c7e2959c3d3c38c6fbfbfbb628d0d1aa"],
  ];
  const sha = (s: string) => createHash("sha256").update(s).digest("hex");
  it.each(GOLDEN)("%i leaves of encoding v2: the library's root and dump (recorded)", (n, root, dumpSha) => {
    const t = ours(TYPES_V2, batchValuesV2(n, "golden"));
    expect(t.nodes[0]).toBe(root);
    expect(sha(JSON.stringify(t.dump))).toBe(dumpSha);
  });
  it.runIf(process.env.MERKLE_OZ_GOLDEN === "1").each(GOLDEN)("%i leaves: the recorded constants are the library's own", (n, root, dumpSha) => {
    const oz = StandardMerkleTree.of(batchValuesV2(n, "golden"), TYPES_V2);
    expect([oz.root, sha(JSON.stringify(oz.dump()))]).toEqual([root, dumpSha]);
  }, 600_000);
});

describe("leaf order", () => {
  /** The reference: a stable sort of the indices by whole hash, the k-th smallest at slot 2n-2-k. */
  const naive = (hashes: Buffer) => {
    const n = hashes.length / 32;
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => Buffer.compare(hashes.subarray(32 * a, 32 * a + 32), hashes.subarray(32 * b, 32 * b + 32)) || a - b);
    const slots = new Array<number>(n);
    order.forEach((i, k) => (slots[i] = 2 * n - 2 - k));
    return slots;
  };
  it("sorts by the whole hash when leading bytes tie, and keeps equal hashes in input order", () => {
    // Hashes drawn from few leading bytes and few tails, so prefixes and whole hashes collide often.
    const hashArb = fc.tuple(fc.constantFrom(0x00, 0x7f, 0xff), fc.nat({ max: 3 }), fc.constantFrom(0, 1, 255)).map(([lead, mid, last]) => {
      const h = Buffer.alloc(32, lead);
      h[9] = mid;
      h[31] = last;
      return h;
    });
    fc.assert(
      fc.property(fc.array(hashArb, { minLength: 1, maxLength: 300 }), (hs) => {
        const hashes = Buffer.concat(hs);
        expect(Array.from(sortedSlots(hashes))).toEqual(naive(hashes));
      }),
      { numRuns: 200 },
    );
  });
});

describe("hashing", () => {
  it("runs on WebAssembly once ready, with the same digests as the pure-JS keccak", () => {
    expect(keccakBackend()).toBe("wasm");
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (data) => {
        expect(toHex(keccak256(data))).toBe(viemKeccak(data));
      }),
      { numRuns: 100 },
    );
  });

  it("hashes a pair smaller first, and processes proofs as MerkleProof does", () => {
    const [a, b] = [viemKeccak("0x01"), viemKeccak("0x02")] as Hex[];
    const [lo, hi] = [a!, b!].sort();
    expect(hashPair(a!, b!)).toBe(viemKeccak(`0x${lo!.slice(2)}${hi!.slice(2)}` as ViemHex));
    expect(hashPair(b!, a!)).toBe(hashPair(a!, b!));
    expect(processProof(a!, [b!])).toBe(hashPair(a!, b!));
    expect(processProof(a!, [])).toBe(a);
    expect(() => processProof(a!, ["0x12"])).toThrow(/not a 32-byte hex hash/);
    expect(verifyProof(a!, ["bytes32"], ["0x12"], [])).toBe(false);
  });
});
