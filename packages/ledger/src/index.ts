export { EmbeddedLedger } from "./embedded.ts";
export { RedisLedger, type RedisLedgerOptions } from "./redis.ts";
