import { startRedis, type RedisServer } from "@facilitator/devnet";
import { RedisLedger } from "./redis.ts";
import { describeLedgerContract } from "./contract.ts";

let server: RedisServer | undefined;
let prefixes = 0;

const ensureServer = async () => (server ??= await startRedis({ appendOnly: true }));
/** Each ledger under its own key prefix on the one server, so tests do not see each other's entries. */
const prefixOf = new WeakMap<object, string>();

const open = (prefix: string) => {
  const ledger = new RedisLedger({ redis: server!.url, prefix });
  prefixOf.set(ledger, prefix);
  return ledger;
};

describeLedgerContract("RedisLedger (append-only redis-server)", {
  async create() {
    await ensureServer();
    return open(`test${++prefixes}:`);
  },
  async another(ledger) {
    return open(prefixOf.get(ledger)!);
  },
  async reopen(ledger) {
    await ledger.close();
    await server!.restart();
    return open(prefixOf.get(ledger)!);
  },
  crashes: {
    "a SIGKILL of redis-server": async (ledger) => {
      server!.kill();
      await ledger.close();
      await server!.restart();
      return open(prefixOf.get(ledger)!);
    },
  },
  async cleanup() {
    await server?.stop();
  },
});
