/**
 * abi.encode of a leaf, by hand over one reused Buffer, for the few types our leaves use. viem's and
 * OpenZeppelin's general encoders spend most of a tree's build time here. Values follow
 * StandardMerkleTree's conventions: hex strings for bytes32, address and bytes, a JS string for string,
 * a bigint or an integer string (decimal or 0x hex) for uint256. Anything else throws, so a malformed
 * value can never be hashed into a root.
 */
export type LeafType = "bytes32" | "uint256" | "address" | "bytes" | "string";
export type HexType = "bytes32" | "address" | "bytes";

const LEAF_TYPES: ReadonlySet<string> = new Set<LeafType>(["bytes32", "uint256", "address", "bytes", "string"]);

export function leafLayout(types: readonly string[]): readonly LeafType[] {
  if (types.length === 0) throw new Error("a leaf needs at least one field");
  for (const t of types) if (!LEAF_TYPES.has(t)) throw new Error(`leaf type ${JSON.stringify(t)} is not supported (${[...LEAF_TYPES].join(", ")})`);
  return types as readonly LeafType[];
}

const SIZE = { bytes32: 32, address: 20 } as const;

/** Byte length of a hex field after checking its shape (0x, even length, the type's size); the digits are checked by writeHex. */
export function hexLength(value: unknown, type: HexType, field: number): number {
  if (typeof value === "string" && value.length % 2 === 0 && value.startsWith("0x")) {
    const len = value.length / 2 - 1;
    if (type === "bytes" || len === SIZE[type]) return len;
  }
  throw new Error(`field ${field} (${type}) is not ${type === "bytes" ? "0x-prefixed hex bytes" : `a 0x-prefixed ${type}`}`);
}

/** Writes `len` bytes of hex at `at`. Node's decoder stops at the first non-hex digit, which is caught here. */
export function writeHex(buf: Buffer, value: string, at: number, len: number, field: number): void {
  if (len > 0 && buf.write(value.slice(2), at, len, "hex") !== len) throw new Error(`field ${field} has a character that is not a hex digit`);
}

const INTEGER = /^(?:0x[0-9a-fA-F]+|[0-9]+)$/;
const MAX_UINT256 = (1n << 256n) - 1n;
const M64 = (1n << 64n) - 1n;

/** A uint256 field: a safe integer (the common case, no BigInt) or a bigint. */
export function uint256(value: unknown, field: number): number | bigint {
  if (typeof value === "string" && value.length <= 15 && value.length > 0) {
    const n = Number(value);
    if (Number.isSafeInteger(n) && n >= 0 && String(n) === value) return n;
  }
  let n: bigint;
  if (typeof value === "bigint") n = value;
  else if (typeof value === "string" && INTEGER.test(value)) n = BigInt(value);
  else throw new Error(`field ${field} (uint256) is not an integer string or bigint`);
  if (n < 0n || n > MAX_UINT256) throw new Error(`field ${field} (uint256) is out of range`);
  return n;
}

/** Writes a uint256 as 32 big-endian bytes at `at` (over zeros). */
export function writeUint256(buf: Buffer, n: number | bigint, at: number): void {
  if (typeof n === "number") {
    buf.writeUInt32BE(Math.floor(n / 2 ** 32), at + 24);
    buf.writeUInt32BE(n >>> 0, at + 28);
    return;
  }
  for (let word = 3; word >= 0; word--, n >>= 64n) buf.writeBigUInt64BE(n & M64, at + 8 * word);
}

const padded = (length: number) => Math.ceil(length / 32) * 32;

/** Encodes leaves one at a time into a buffer it keeps; each result is valid until the next call. */
export class LeafEncoder {
  readonly layout: readonly LeafType[];
  private buf = Buffer.alloc(1024);
  /** Per field of the leaf being encoded: the byte length of a hex or dynamic field. */
  private readonly lengths: number[];

  constructor(types: readonly string[]) {
    this.layout = leafLayout(types);
    this.lengths = new Array(types.length).fill(0);
  }

  encode(value: readonly unknown[]): Uint8Array {
    const { layout, lengths } = this;
    if (!Array.isArray(value) || value.length !== layout.length) throw new Error(`a leaf value needs ${layout.length} fields`);
    let size = 32 * layout.length;
    for (let i = 0; i < layout.length; i++) {
      const t = layout[i]!;
      if (t === "uint256") continue;
      if (t !== "string") lengths[i] = hexLength(value[i], t, i);
      else if (typeof value[i] === "string") lengths[i] = Buffer.byteLength(value[i] as string, "utf8");
      else throw new Error(`field ${i} (string) is not a string`);
      if (t === "bytes" || t === "string") size += 32 + padded(lengths[i]!);
    }
    if (size > this.buf.length) this.buf = Buffer.alloc(Math.max(size, 2 * this.buf.length));
    const buf = this.buf;
    buf.fill(0, 0, size);
    let tail = 32 * layout.length;
    for (let i = 0; i < layout.length; i++) {
      const t = layout[i]!;
      const head = 32 * i;
      const v = value[i];
      if (t === "bytes32") writeHex(buf, v as string, head, 32, i);
      else if (t === "address") writeHex(buf, v as string, head + 12, 20, i);
      else if (t === "uint256") writeUint256(buf, uint256(v, i), head);
      else {
        buf.writeUInt32BE(tail, head + 28);
        buf.writeUInt32BE(lengths[i]!, tail + 28);
        if (t === "bytes") writeHex(buf, v as string, tail + 32, lengths[i]!, i);
        else buf.write(v as string, tail + 32, "utf8");
        tail += 32 + padded(lengths[i]!);
      }
    }
    return buf.subarray(0, size);
  }
}
