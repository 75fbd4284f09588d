export { parseRedisUrl, type RedisNode, type RedisTarget } from "./url.ts";
export { crc16, hashedPart, keySlot, spreadTags, SLOTS } from "./slots.ts";
export { isCluster, isClusterUrl, openRedis, type RedisClient } from "./client.ts";
export { ReplicationError, writeReplicated, type Replication } from "./replicated.ts";
