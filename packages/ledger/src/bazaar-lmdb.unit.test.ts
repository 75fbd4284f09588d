import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeBazaarStoreContract } from "@facilitator/bazaar/testing";
import { LmdbBazaarStore } from "./bazaar-lmdb.ts";

const dirs: string[] = [];

describeBazaarStoreContract("LmdbBazaarStore", {
  async create() {
    const dir = mkdtempSync(join(tmpdir(), "bazaar-"));
    dirs.push(dir);
    return new LmdbBazaarStore(dir);
  },
  async another(store) {
    return new LmdbBazaarStore((store as LmdbBazaarStore).path);
  },
  async reopen(store) {
    await store.close();
    return new LmdbBazaarStore((store as LmdbBazaarStore).path);
  },
  async cleanup() {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  },
});
