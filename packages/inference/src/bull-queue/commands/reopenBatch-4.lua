--[[
  Re-opens a parked batch: its failed records go back to batched, the batch to open.
  Input:
    KEYS[1] the batch's hash (its ids field: the record ids, comma-separated)
    KEYS[2] counts hash
    KEYS[3] open batches set
    KEYS[4] parked batches set

    ARGV[1] new batch document JSON
    ARGV[2] batch id
    ARGV[3] record key prefix

  Output:
    1 re-opened, 0 the batch was not parked
]]
if redis.call('HGET', KEYS[1], 'state') ~= 'parked' then return 0 end
-- A batch formed by an earlier version kept its ids in doc; getBatch copies them here before any write.
local ids = redis.call('HGET', KEYS[1], 'ids')
if not ids then return redis.error_reply('batch ' .. ARGV[2] .. ' has no ids field') end
local moved = 0
for id in string.gmatch(ids, '[^,]+') do
  local key = ARGV[3] .. id
  if redis.call('HGET', key, 'status') == 'failed' then
    redis.call('HSET', key, 'status', 'batched')
    redis.call('HDEL', key, 'error')
    moved = moved + 1
  end
end
redis.call('HINCRBY', KEYS[2], 'failed', -moved)
redis.call('HINCRBY', KEYS[2], 'batched', moved)
redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'state', 'open')
redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('SREM', KEYS[4], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[2])
return 1
