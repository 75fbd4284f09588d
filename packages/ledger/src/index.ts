export { EmbeddedLedger, type EmbeddedLedgerOptions } from "./embedded.ts";
export { RedisLedger, FAIL_FAST_REDIS_OPTIONS, type RedisLedgerOptions } from "./redis.ts";
export { isFinished, keepForMs } from "./entry.ts";
