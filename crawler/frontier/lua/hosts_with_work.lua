-- hosts_with_work.lua: The hosts with queued URLs, except those parked until later (expired leases reclaimed first).
--
-- KEYS[1]  the job's key prefix
-- ARGV     nothing
--          (after the job's marker, which common.lua checks and takes off)
-- Returns  the hosts
local now = clock()
reclaim(now)
local parked = {}
for _, host in ipairs(redis.call('ZRANGEBYSCORE', P .. 'parked', '(' .. now, '+inf')) do parked[host] = true end
local hosts = {}
for _, host in ipairs(redis.call('ZRANGE', P .. 'heads', 0, -1)) do
  if not parked[host] then table.insert(hosts, host) end
end
return hosts
