import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EmbeddedLedger } from "./embedded.ts";
import { describeLedgerContract } from "./contract.ts";

const dirs: string[] = [];

describeLedgerContract("EmbeddedLedger (lmdb)", {
  async create() {
    const dir = mkdtempSync(join(tmpdir(), "ledger-"));
    dirs.push(dir);
    return new EmbeddedLedger(dir);
  },
  async another(ledger) {
    return new EmbeddedLedger((ledger as EmbeddedLedger).path);
  },
  async reopen(ledger) {
    await ledger.close();
    return new EmbeddedLedger((ledger as EmbeddedLedger).path);
  },
  async cleanup() {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  },
});
