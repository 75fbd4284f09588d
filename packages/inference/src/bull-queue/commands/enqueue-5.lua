--[[
  Stores new records and puts each in its lane's waiting list, in one step (the intake call).
  Input:
    KEYS[1] counts hash (status -> number of records)
    KEYS[2] waiting list of the batch lane
    KEYS[3] waiting list of the single lane
    KEYS[4] waiting list of the gateway lane
    KEYS[5] this call's answer

    ARGV[1] record key prefix
    ARGV[2] enqueuedAt (ms)
    ARGV[3] answer TTL (s)
    ARGV[4...] per record: id, KEYS index of its waiting list (2, 3 or 4), record JSON

  Output:
    one letter per record: 'n' (new) or the first letter of the status it already had

  The answer is kept for a while: ioredis sends a command again when the connection dropped before its
  reply, and that second run must give the first run's answer (records it created are new to this
  call, not duplicates).
]]
local answered = redis.call('GET', KEYS[5])
if answered then return answered end
local out, added = {}, 0
-- New ids per waiting list, pushed in order with one RPUSH per list and slice (fewer calls than one a record).
local lines = {}
for i = 4, #ARGV, 3 do
  local id = ARGV[i]
  local key = ARGV[1] .. id
  local status = redis.call('HGET', key, 'status')
  if status then
    out[#out + 1] = string.sub(status, 1, 1)
  else
    redis.call('HSET', key, 'record', ARGV[i + 2], 'status', 'queued', 'enqueuedAt', ARGV[2])
    local list = tonumber(ARGV[i + 1])
    lines[list] = lines[list] or {}
    table.insert(lines[list], id)
    added = added + 1
    out[#out + 1] = 'n'
  end
end
for list, ids in pairs(lines) do
  for from = 1, #ids, 1000 do
    redis.call('RPUSH', KEYS[list], unpack(ids, from, math.min(from + 999, #ids)))
  end
end
if added > 0 then redis.call('HINCRBY', KEYS[1], 'queued', added) end
local answer = table.concat(out)
redis.call('SET', KEYS[5], answer, 'EX', ARGV[3])
return answer
