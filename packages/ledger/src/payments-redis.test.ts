import { redisBackends } from "@facilitator/devnet";
import { describePaymentsStoreContract } from "@facilitator/payments/testing";
import { RedisPaymentsStore } from "./payments-redis.ts";

const DAY = 86_400_000;

for (const backend of redisBackends()) {
  let prefixes = 0;
  /** Each store under its own prefix (still one `{payments}` hash tag each). */
  const settings = new WeakMap<object, { url: string; prefix: string; retentionMs: number }>();
  const open = (url: string, prefix: string, retentionMs: number) => {
    const store = new RedisPaymentsStore({ redis: url, prefix, retentionMs, replication: backend.replication });
    settings.set(store, { url, prefix, retentionMs });
    return store;
  };
  const reopenLike = (store: object) => {
    const s = settings.get(store)!;
    return open(s.url, s.prefix, s.retentionMs);
  };

  describePaymentsStoreContract(`RedisPaymentsStore (${backend.label})`, {
    async create(retentionMs = 30 * DAY) {
      return open(await backend.url(), `test${++prefixes}:{payments}:`, retentionMs);
    },
    async another(store) {
      return reopenLike(store);
    },
    async reopen(store) {
      await store.close();
      await backend.crash(settings.get(store)!.prefix);
      return reopenLike(store);
    },
    // Redis expires keys on its own clock: time passes for real here.
    async elapse(_store, ms) {
      await new Promise((r) => setTimeout(r, ms));
    },
    async cleanup() {
      await backend.stop();
    },
  });
}
