-- add.lua: Queue URLs found (links, seeds, sitemaps) that the job has not seen.
--
-- KEYS[1]  the job's key prefix
-- ARGV     (fingerprint, host, depth, url, excluded '1'/'0') per URL
--          (after the job's marker, which common.lua checks and takes off)
-- Returns  how many were queued
local queued = 0
for i = 1, #ARGV, 5 do
  local fp, host, depth, url, excluded = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local state = redis.call('HGET', P .. 'seen', fp)
  if excluded == '1' or redis.call('SISMEMBER', P .. 'spent', host) == 1 then
    if not state then redis.call('HSET', P .. 'seen', fp, 'e') end
  elseif not state or state == 'e' then
    -- new, or excluded before and now in bounds (found by a shorter path, or given as a seed)
    local id = redis.call('INCR', P .. 'ids')
    local entry = id .. ' ' .. depth .. ' ' .. url
    if redis.call('RPUSH', P .. 'q:' .. host, entry) == 1 then redis.call('ZADD', P .. 'heads', id, host) end
    redis.call('HSET', P .. 'seen', fp, 'q')
    redis.call('SADD', P .. 'hosts', host)
    queued = queued + 1
  end
end
if queued > 0 then redis.call('HINCRBY', P .. 'n', 'queued', queued) end
return queued
