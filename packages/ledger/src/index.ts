export { LmdbLedger, type LmdbLedgerOptions } from "./lmdb-ledger.ts";
export { RedisLedger, type RedisLedgerOptions } from "./redis.ts";
export { isFinished, keepForMs } from "./entry.ts";
export { LmdbBazaarStore } from "./bazaar-lmdb.ts";
export { RedisBazaarStore, type RedisBazaarStoreOptions } from "./bazaar-redis.ts";
export { LmdbPaymentsStore, type LmdbPaymentsStoreOptions } from "./payments-lmdb.ts";
export { RedisPaymentsStore, type RedisPaymentsStoreOptions } from "./payments-redis.ts";
