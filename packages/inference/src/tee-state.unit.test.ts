import { mkdtempSync, rmSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MemoryNonceStore } from "@facilitator/tee";
import { MemoryHeartbeatSlots, slotHeld } from "./heartbeat.ts";
import { LmdbTeeState } from "./tee-state-lmdb.ts";
import { describeTeeStateContract, type TeeState } from "./testing/tee-state-contract.ts";

describeTeeStateContract("the in-memory TEE state (one process)", {
  async create() {
    const nonces = new MemoryNonceStore();
    const slots = new MemoryHeartbeatSlots();
    return { add: nonces.add.bind(nonces), redeem: nonces.redeem.bind(nonces), take: slots.take.bind(slots) } satisfies TeeState;
  },
  async cleanup() {},
});

const dir = mkdtempSync(join(tmpdir(), "tee-state-"));
const opened: LmdbTeeState[] = [];
let n = 0;
describeTeeStateContract("LmdbTeeState (DATA_DIR/tees)", {
  async create() {
    const state = new LmdbTeeState(join(dir, `s${++n}`));
    opened.push(state);
    return state;
  },
  async another(state) {
    const again = new LmdbTeeState((state as LmdbTeeState).path);
    opened.push(again);
    return again;
  },
  async cleanup() {
    for (const s of opened) await s.close();
    rmSync(dir, { recursive: true, force: true });
  },
});

describe("the heartbeat slot rule every store applies", () => {
  it.each<[string, number | undefined, number, boolean]>([
    ["never taken", undefined, 1_000, false],
    ["taken just now", 1_000, 1_000, true],
    ["taken one ms short of the interval", 1_000, 60_999, true],
    ["taken exactly one interval ago", 1_000, 61_000, false],
    ["a clock that went back", 5_000, 1_000, true],
  ])("%s", (_name, takenAt, now, held) => {
    expect(slotHeld(takenAt, now, 60_000)).toBe(held);
  });
});
