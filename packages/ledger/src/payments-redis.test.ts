import { startRedis, type RedisServer } from "@facilitator/devnet";
import { describePaymentsStoreContract } from "@facilitator/payments/testing";
import { RedisPaymentsStore } from "./payments-redis.ts";

let server: RedisServer | undefined;
let prefixes = 0;
const DAY = 86_400_000;
/** Each store under its own prefix on the one server (still one `{payments…}` hash tag each). */
const settings = new WeakMap<object, { prefix: string; retentionMs: number }>();
const open = (prefix: string, retentionMs: number) => {
  const store = new RedisPaymentsStore({ redis: server!.url, prefix, retentionMs });
  settings.set(store, { prefix, retentionMs });
  return store;
};
const reopenLike = (store: object) => open(settings.get(store)!.prefix, settings.get(store)!.retentionMs);

describePaymentsStoreContract("RedisPaymentsStore (append-only redis-server)", {
  async create(retentionMs = 30 * DAY) {
    server ??= await startRedis({ appendOnly: true });
    return open(`test${++prefixes}:{payments}:`, retentionMs);
  },
  async another(store) {
    return reopenLike(store);
  },
  async reopen(store) {
    await store.close();
    await server!.restart();
    return reopenLike(store);
  },
  // Redis expires keys on its own clock: time passes for real here.
  async elapse(_store, ms) {
    await new Promise((r) => setTimeout(r, ms));
  },
  async cleanup() {
    await server?.stop();
  },
});
