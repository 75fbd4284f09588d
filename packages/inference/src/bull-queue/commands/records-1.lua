--[[
  The records themselves, for the worker that anchors them: one reply instead of a command per record.
  Input:
    KEYS[1] counts hash (only to route the call to the partition's node; not read)

    ARGV[1] record key prefix
    ARGV[2...] record ids

  Output:
    the records' JSON in the order asked ('null' for an id not stored), joined by commas: the body of
    one JSON array
]]
local out = {}
for i = 2, #ARGV do
  out[#out + 1] = redis.call('HGET', ARGV[1] .. ARGV[i], 'record') or 'null'
end
return table.concat(out, ',')
