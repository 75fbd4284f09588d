import { redisBackends } from "@facilitator/devnet";
import { describeBazaarStoreContract } from "@facilitator/bazaar/testing";
import { RedisBazaarStore } from "./bazaar-redis.ts";

for (const backend of redisBackends()) {
  let prefixes = 0;
  /** Each store under its own prefix (still one `{bazaar}` hash tag each). */
  const settings = new WeakMap<object, { url: string; prefix: string }>();
  const open = (url: string, prefix: string) => {
    const store = new RedisBazaarStore({ redis: url, prefix, replication: backend.replication });
    settings.set(store, { url, prefix });
    return store;
  };
  const reopenLike = (store: object) => open(settings.get(store)!.url, settings.get(store)!.prefix);

  describeBazaarStoreContract(`RedisBazaarStore (${backend.label})`, {
    async create() {
      return open(await backend.url(), `test${++prefixes}:{bazaar}:`);
    },
    async another(store) {
      return reopenLike(store);
    },
    async reopen(store) {
      await store.close();
      await backend.crash(settings.get(store)!.prefix);
      return reopenLike(store);
    },
    async cleanup() {
      await backend.stop();
    },
  });
}
