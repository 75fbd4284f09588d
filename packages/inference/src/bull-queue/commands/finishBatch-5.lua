--[[
  Ends an open batch (anchored or parked) and moves its records to their final status, in one step,
  if the caller's copy is the latest (compare-and-set on version).
  Input:
    KEYS[1] the batch's hash (its ids field: the record ids, comma-separated)
    KEYS[2] counts hash
    KEYS[3] open batches set
    KEYS[4] parked batches set
    KEYS[5] the batch's tree nodes (string of 32-byte slots; written when ARGV[10] is not empty)

    ARGV[1] expected version
    ARGV[2] new batch document JSON
    ARGV[3] new state ('anchored' or 'parked')
    ARGV[4] batch id
    ARGV[5] record key prefix
    ARGV[6] record status to set
    ARGV[7] only move records in this status ('' = any but the target)
    ARGV[8] record field to write (at: place in the batch, or error)
    ARGV[9] the batch's anchor JSON, what its records share ('' = none)
    ARGV[10] the tree's nodes ('' = none)
    ARGV[11] that field's value for every record ('' = see ARGV[12])
    ARGV[12] that field's value per record, comma-separated in the order of the batch's ids ('' = none)

  Output:
    1 done, 0 the batch changed meanwhile or is no longer open
]]
if redis.call('HGET', KEYS[1], 'version') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'state') ~= 'open' then return 0 end
local target, from, field = ARGV[6], ARGV[7], ARGV[8]
-- A batch formed by an earlier version kept its ids in doc; getBatch copies them here before any write.
local ids = redis.call('HGET', KEYS[1], 'ids')
if not ids then return redis.error_reply('batch ' .. ARGV[4] .. ' has no ids field') end
local left = {}
local moved = 0
local values = {}
for value in string.gmatch(ARGV[12], '[^,]+') do values[#values + 1] = value end
local i = 0
for id in string.gmatch(ids, '[^,]+') do
  i = i + 1
  local key = ARGV[5] .. id
  local status = redis.call('HGET', key, 'status')
  if status and status ~= target and (from == '' or status == from) then
    local value = values[i] or ARGV[11]
    if value ~= '' then
      redis.call('HSET', key, 'status', target, field, value)
    else
      redis.call('HSET', key, 'status', target)
    end
    if target == 'anchored' and status == 'failed' then redis.call('HDEL', key, 'error') end
    left[status] = (left[status] or 0) + 1
    moved = moved + 1
  end
end
for status, count in pairs(left) do redis.call('HINCRBY', KEYS[2], status, -count) end
redis.call('HINCRBY', KEYS[2], target, moved)
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'version', tonumber(ARGV[1]) + 1, 'state', ARGV[3])
if ARGV[9] ~= '' then redis.call('HSET', KEYS[1], 'anchor', ARGV[9]) end
if ARGV[10] ~= '' then redis.call('SET', KEYS[5], ARGV[10]) end
redis.call('SREM', KEYS[3], ARGV[4])
if ARGV[3] == 'parked' then redis.call('SADD', KEYS[4], ARGV[4]) end
return 1
