export { parseRedisUrl, type RedisNode, type RedisTarget } from "./url.ts";
export { crc16, hashedPart, keySlot, spreadTags, SLOTS } from "./slots.ts";
export { FAIL_FAST_REDIS_OPTIONS, isCluster, isClusterUrl, openRedis, storeRedis, type RedisClient, type StoreRedis } from "./client.ts";
export { ReplicationError, writeReplicated, type Replication } from "./replicated.ts";
