--[[
  Takes the oldest waiting ids of a lane, moves their records from queued to batched and writes the
  batch, in one step; only when the lane holds a full batch or its oldest record has waited long enough.
  Input:
    KEYS[1] waiting list of the lane
    KEYS[2] the new batch's hash
    KEYS[3] counts hash
    KEYS[4] open batches set
    KEYS[5] unscheduled batches set (formed, anchor job not yet added)

    ARGV[1] record key prefix
    ARGV[2] max batch size
    ARGV[3] max wait (ms)
    ARGV[4] now (ms)
    ARGV[5] batch id
    ARGV[6] batch document JSON (its recordIds empty: the ids are kept in the hash's ids field)

  Output:
    {}                 nothing waiting (or nothing still queued)
    {'wait', ms}       too few records, and too young
    {'formed', ids...} the batch was formed with these record ids
]]
local waiting = redis.call('LLEN', KEYS[1])
if waiting == 0 then return {} end
local maxSize, maxWait, now = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if waiting < maxSize then
  local oldest = tonumber(redis.call('HGET', ARGV[1] .. redis.call('LINDEX', KEYS[1], 0), 'enqueuedAt') or 0)
  if now - oldest < maxWait then return {'wait', oldest + maxWait - now} end
end
local ids = redis.call('LRANGE', KEYS[1], 0, maxSize - 1)
redis.call('LTRIM', KEYS[1], #ids, -1)
local assigned = {}
for _, id in ipairs(ids) do
  local key = ARGV[1] .. id
  if redis.call('HGET', key, 'status') == 'queued' then
    redis.call('HSET', key, 'status', 'batched', 'batchId', ARGV[5])
    assigned[#assigned + 1] = id
  end
end
if #assigned == 0 then return {} end
redis.call('HSET', KEYS[2], 'doc', ARGV[6], 'ids', table.concat(assigned, ','), 'version', 1, 'state', 'open')
redis.call('HINCRBY', KEYS[3], 'queued', -#assigned)
redis.call('HINCRBY', KEYS[3], 'batched', #assigned)
redis.call('SADD', KEYS[4], ARGV[5])
redis.call('SADD', KEYS[5], ARGV[5])
table.insert(assigned, 1, 'formed')
return assigned
