-- common.lua: the start of every script (the loader puts it before each one's own text).
--
-- KEYS[1] is the job's key prefix: every other key is built from it (all in one hash slot).
-- ARGV[1] is the job's marker as the worker found it when it joined ('' before): a script refuses
-- with NOJOB (and changes nothing) when Redis holds another marker or none, and takes it off ARGV
-- otherwise, so each script's own arguments start at ARGV[1]. Time is Redis's (TIME), in ms.
local P = KEYS[1]
local JOB = table.remove(ARGV, 1)
if JOB ~= '' and redis.call('GET', P .. 'job') ~= JOB then
  return redis.error_reply('NOJOB this Redis does not hold the job (restarted without persistence, or flushed)')
end
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function entry_id(entry) return tonumber(string.match(entry, '^(%d+) ')) end
local function set_head(host)
  local head = redis.call('LINDEX', P .. 'q:' .. host, 0)
  if head then redis.call('ZADD', P .. 'heads', entry_id(head), host) else redis.call('ZREM', P .. 'heads', host) end
  return head
end
local function beat(worker, now, ttl)
  redis.call('SADD', P .. 'workers', worker)
  redis.call('SET', P .. 'alive:' .. worker, now, 'PX', ttl)
end
-- Forget lease ``id`` (its record ``rec``: token, worker, host, entry): no longer leased, its worker
-- no longer holds it, its host has one request less in flight.
local function end_lease(id, rec)
  redis.call('HDEL', P .. 'leased', id)
  redis.call('ZREM', P .. 'expiry', id)
  redis.call('SREM', P .. 'w:' .. rec[2], id)
  redis.call('HINCRBY', P .. 'h:' .. rec[3], 'inflight', -1)
end
-- End the leases of ``ids`` (those still out) and put their URLs back at the head of their hosts'
-- queues, oldest first, so they keep their turn. Returns how many.
local function unlease(ids)
  local back = {}
  for _, id in ipairs(ids) do
    local raw = redis.call('HGET', P .. 'leased', id)
    if raw then
      local rec = cjson.decode(raw)
      end_lease(id, rec)
      table.insert(back, rec)
    end
  end
  table.sort(back, function(a, b) return entry_id(a[4]) > entry_id(b[4]) end)
  for _, rec in ipairs(back) do
    if redis.call('SISMEMBER', P .. 'spent', rec[3]) == 0 then
      redis.call('LPUSH', P .. 'q:' .. rec[3], rec[4])
      redis.call('ZADD', P .. 'heads', entry_id(rec[4]), rec[3])
      redis.call('HINCRBY', P .. 'n', 'queued', 1)
    end
  end
  return #back
end
local function reclaim(now)
  local expired = redis.call('ZRANGEBYSCORE', P .. 'expiry', '-inf', now, 'LIMIT', 0, 1000)
  local count = unlease(expired)
  if count > 0 then redis.call('HINCRBY', P .. 'n', 'reclaimed', count) end
  return count
end
