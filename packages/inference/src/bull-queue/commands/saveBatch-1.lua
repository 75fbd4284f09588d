--[[
  Saves a step of an open batch, if the caller's copy is the latest (compare-and-set on version).
  Input:
    KEYS[1] the batch's hash (the record ids in its ids field; the doc keeps none)

    ARGV[1] expected version
    ARGV[2] new batch document JSON
    ARGV[3] new state

  Output:
    1 saved, 0 the batch changed meanwhile or is no longer open
]]
if redis.call('HGET', KEYS[1], 'version') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'state') ~= 'open' then return 0 end
-- The doc carries no record ids; a batch formed by an earlier version has them copied to ids by getBatch first.
if redis.call('HEXISTS', KEYS[1], 'ids') == 0 then return redis.error_reply('batch hash ' .. KEYS[1] .. ' has no ids field') end
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'version', tonumber(ARGV[1]) + 1, 'state', ARGV[3])
return 1
