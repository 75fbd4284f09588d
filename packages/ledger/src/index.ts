export { LmdbLedger, type LmdbLedgerOptions } from "./lmdb-ledger.ts";
export { RedisLedger, FAIL_FAST_REDIS_OPTIONS, type RedisLedgerOptions } from "./redis.ts";
export { isFinished, keepForMs } from "./entry.ts";
