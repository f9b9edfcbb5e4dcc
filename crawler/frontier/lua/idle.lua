-- idle.lua: Whether this run of the job is over: no lease is out (expired or not: an expired lease is
-- work until a worker takes it back) and every host with queued URLs is parked until later.
--
-- KEYS[1]  the job's key prefix
-- ARGV     wait ms: a park that ends within it counts as work
--          (after the job's marker, which common.lua checks and takes off)
-- Returns  1 when over, else 0
if redis.call('HLEN', P .. 'leased') > 0 then return 0 end
local now = clock()
for _, host in ipairs(redis.call('ZRANGE', P .. 'heads', 0, -1)) do
  local parked_until = redis.call('ZSCORE', P .. 'parked', host)
  if not parked_until or tonumber(parked_until) <= now + tonumber(ARGV[1] or 0) then return 0 end
end
return 1
