-- renew.lua: Extend a worker's leases and beat its heartbeat.
--
-- KEYS[1]  the job's key prefix
-- ARGV     worker, lease ms, heartbeat ms, then (id, token) per item
--          (after the job's marker, which common.lua checks and takes off)
-- Returns  the ids whose lease is lost
local now = clock()
beat(ARGV[1], now, tonumber(ARGV[3]))
local lost = {}
for i = 4, #ARGV, 2 do
  local raw = redis.call('HGET', P .. 'leased', ARGV[i])
  if raw and cjson.decode(raw)[1] == ARGV[i + 1] then
    redis.call('ZADD', P .. 'expiry', now + tonumber(ARGV[2]), ARGV[i])
  else
    table.insert(lost, ARGV[i])
  end
end
return lost
