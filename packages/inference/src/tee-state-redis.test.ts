import { redisBackends } from "@facilitator/devnet";
import { RedisTeeState } from "./tee-state-redis.ts";
import { describeTeeStateContract } from "./testing/tee-state-contract.ts";

for (const backend of redisBackends()) {
  let prefixes = 0;
  const opened: RedisTeeState[] = [];
  /** Each state under its own prefix (still one `{tees}` hash tag each). */
  const settings = new WeakMap<object, { url: string; prefix: string }>();
  const open = (url: string, prefix: string) => {
    const state = new RedisTeeState({ redis: url, prefix });
    settings.set(state, { url, prefix });
    opened.push(state);
    return state;
  };

  describeTeeStateContract(`RedisTeeState (${backend.label})`, {
    async create() {
      return open(await backend.url(), `test${++prefixes}:{tees}:`);
    },
    async another(state) {
      return open(settings.get(state)!.url, settings.get(state)!.prefix);
    },
    async cleanup() {
      for (const s of opened) await s.close();
      await backend.stop();
    },
  });
}
