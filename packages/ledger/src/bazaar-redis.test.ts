import { startRedis, type RedisServer } from "@facilitator/devnet";
import { describeBazaarStoreContract } from "@facilitator/bazaar/testing";
import { RedisBazaarStore } from "./bazaar-redis.ts";

let server: RedisServer | undefined;
let prefixes = 0;
/** Each store under its own prefix on the one server (still one `{bazaar…}` hash tag each). */
const prefixOf = new WeakMap<object, string>();
const open = (prefix: string) => {
  const store = new RedisBazaarStore({ redis: server!.url, prefix });
  prefixOf.set(store, prefix);
  return store;
};

describeBazaarStoreContract("RedisBazaarStore (append-only redis-server)", {
  async create() {
    server ??= await startRedis({ appendOnly: true });
    return open(`test${++prefixes}:{bazaar}:`);
  },
  async another(store) {
    return open(prefixOf.get(store)!);
  },
  async reopen(store) {
    await store.close();
    await server!.restart();
    return open(prefixOf.get(store)!);
  },
  async cleanup() {
    await server?.stop();
  },
});
