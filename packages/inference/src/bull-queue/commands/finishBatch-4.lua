--[[
  Ends an open batch (anchored or parked) and moves its records to their final status, in one step,
  if the caller's copy is the latest (compare-and-set on version).
  Input:
    KEYS[1] the batch's hash
    KEYS[2] counts hash
    KEYS[3] open batches set
    KEYS[4] parked batches set

    ARGV[1] expected version
    ARGV[2] new batch document JSON
    ARGV[3] new state ('anchored' or 'parked')
    ARGV[4] batch id
    ARGV[5] record key prefix
    ARGV[6] record status to set
    ARGV[7] only move records in this status ('' = any but the target)
    ARGV[8] record field to write (anchor or error)
    ARGV[9...] per record: id, that field's value

  Output:
    1 done, 0 the batch changed meanwhile or is no longer open
]]
if redis.call('HGET', KEYS[1], 'version') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'state') ~= 'open' then return 0 end
local target, from, field = ARGV[6], ARGV[7], ARGV[8]
local moved = 0
for i = 9, #ARGV, 2 do
  local key = ARGV[5] .. ARGV[i]
  local status = redis.call('HGET', key, 'status')
  if status and status ~= target and (from == '' or status == from) then
    redis.call('HSET', key, 'status', target, field, ARGV[i + 1])
    if target == 'anchored' then redis.call('HDEL', key, 'error') end
    redis.call('HINCRBY', KEYS[2], status, -1)
    moved = moved + 1
  end
end
redis.call('HINCRBY', KEYS[2], target, moved)
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'version', tonumber(ARGV[1]) + 1, 'state', ARGV[3])
redis.call('SREM', KEYS[3], ARGV[4])
if ARGV[3] == 'parked' then redis.call('SADD', KEYS[4], ARGV[4]) end
return 1
