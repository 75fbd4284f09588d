/**
 * Redis Cluster key slots (the cluster specification's HASH_SLOT): CRC16-XMODEM of the key, or of its
 * hash tag (the text between the first `{` and the next `}`, when not empty), modulo 16384. Keys that
 * one script touches must share a slot; keys that need not, spread better in slots of their own.
 */
export const SLOTS = 16_384;

const TABLE = Array.from({ length: 256 }, (_, byte) => {
  let crc = byte << 8;
  for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  return crc;
});

/** CRC16-XMODEM (polynomial 0x1021, initial 0) of the UTF-8 bytes of `text`. */
export function crc16(text: string): number {
  let crc = 0;
  for (const byte of Buffer.from(text, "utf8")) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ byte) & 0xff]!;
  return crc;
}

/** The part of `key` that decides its slot: its hash tag if it has one, else the whole key. */
export function hashedPart(key: string): string {
  const open = key.indexOf("{");
  if (open < 0) return key;
  const close = key.indexOf("}", open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : key;
}

export function keySlot(key: string): number {
  return crc16(hashedPart(key)) % SLOTS;
}

/**
 * `count` hash tags (`<label>-<i>.<n>`) whose slots fall in `count` equal ranges of the slot space, one
 * in each, so a cluster whose primaries hold even ranges (as `redis-cli --cluster create` assigns them)
 * serves them from as many primaries as it can. Deterministic: every process derives the same tags.
 */
export function spreadTags(label: string, count: number): string[] {
  if (!(Number.isInteger(count) && count >= 1 && count <= SLOTS)) throw new Error(`tag count must be 1-${SLOTS}, got ${count}`);
  return Array.from({ length: count }, (_, i) => {
    const [from, to] = [Math.floor((i * SLOTS) / count), Math.floor(((i + 1) * SLOTS) / count)];
    for (let n = 0; ; n++) {
      const tag = `${label}-${i}.${n}`;
      const slot = crc16(tag) % SLOTS;
      if (slot >= from && slot < to) return tag;
    }
  });
}
