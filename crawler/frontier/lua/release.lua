-- release.lua: Give leases back: their URLs return to the head of their hosts' queues.
--
-- KEYS[1]  the job's key prefix
-- ARGV     worker, then (id, token) per item, or nothing for every lease of the worker
--          (after the job's marker, which common.lua checks and takes off)
-- Returns  (released, refused)
local ids, refused = {}, 0
if #ARGV == 1 then
  ids = redis.call('SMEMBERS', P .. 'w:' .. ARGV[1])
else
  for i = 2, #ARGV, 2 do
    local raw = redis.call('HGET', P .. 'leased', ARGV[i])
    if raw and cjson.decode(raw)[1] == ARGV[i + 1] then table.insert(ids, ARGV[i]) else refused = refused + 1 end
  end
end
return {unlease(ids), refused}
