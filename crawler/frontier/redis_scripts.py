"""The Redis frontier's Lua scripts: every change to a job's keys is one of these, run atomically.

``crawler.frontier.redis`` describes the keys. Each script takes the job's key prefix as KEYS[1] and
builds the other names from it (all in one hash slot), reads the time from Redis (``TIME``), and is
safe to run twice: a command whose reply was lost can be retried.

ARGV[1] of every script is the job's marker as the worker found it when it joined ('' before):
a script refuses with ``NOJOB`` (and changes nothing) when Redis holds another marker or none, and
takes it off ARGV otherwise, so each script's own arguments start at ARGV[1].
"""

COMMON = """
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
"""

# ARGV: (fingerprint, host, depth, url, excluded "1"/"0") per URL. Returns how many were queued.
ADD = COMMON + """
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
"""

# ARGV: worker, limit, host ('' for any), lease ms, per_host, delay ms, budget, heartbeat ms.
# Returns (token, host, entry) per URL leased.
LEASE = COMMON + """
local worker, limit, host = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local lease_ms, per_host, delay_ms, budget = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local now = clock()
reclaim(now)
beat(worker, now, tonumber(ARGV[8]))
-- How many URLs ``h`` may lease now, job-wide, and its delay: with a delay, one URL per lease,
-- and consecutive leases at least the delay apart.
local function allowance(h, want)
  local s = redis.call('HMGET', P .. 'h:' .. h, 'inflight', 'next', 'fetched', 'delay')
  local inflight = tonumber(s[1]) or 0
  local n = want
  if per_host > 0 then n = math.min(n, per_host - inflight) end
  if budget > 0 then n = math.min(n, budget - (tonumber(s[3]) or 0) - inflight) end
  local delay = math.max(delay_ms, tonumber(s[4]) or 0)
  if delay > 0 then
    if now < (tonumber(s[2]) or 0) then return 0, delay end
    n = math.min(n, 1)
  end
  return n, delay
end
local out = {}
-- Lease the head of h's queue; returns the new head (false when the queue is empty now).
local function take(h, delay)
  local entry = redis.call('LPOP', P .. 'q:' .. h)
  local id = string.match(entry, '^(%d+) ')
  local token = redis.call('INCR', P .. 'tokens')
  redis.call('HSET', P .. 'leased', id, cjson.encode({tostring(token), worker, h, entry}))
  redis.call('ZADD', P .. 'expiry', now + lease_ms, id)
  redis.call('SADD', P .. 'w:' .. worker, id)
  redis.call('HINCRBY', P .. 'h:' .. h, 'inflight', 1)
  if delay > 0 then redis.call('HSET', P .. 'h:' .. h, 'next', now + delay) end
  redis.call('HINCRBY', P .. 'n', 'queued', -1)
  table.insert(out, token)
  table.insert(out, h)
  table.insert(out, entry)
  return set_head(h)
end
if host ~= '' then
  local n, delay = allowance(host, limit)
  for _ = 1, n do
    if redis.call('LLEN', P .. 'q:' .. host) == 0 or not take(host, delay) then break end
  end
else
  -- Oldest first across hosts: the oldest ``limit`` URLs that the hosts' limits allow come from
  -- the first ``limit`` eligible hosts in head order; merge their queues by id.
  local cands, offset = {}, 0
  while #cands < limit do
    local page = redis.call('ZRANGE', P .. 'heads', offset, offset + 99, 'WITHSCORES')
    if #page == 0 then break end
    for i = 1, #page, 2 do
      local n, delay = allowance(page[i], limit)
      if n > 0 and #cands < limit then table.insert(cands, {page[i], n, delay, tonumber(page[i + 1])}) end
    end
    offset = offset + 100
  end
  for _ = 1, limit do
    local best = nil
    for _, c in ipairs(cands) do
      if c[2] > 0 and c[4] and (best == nil or c[4] < best[4]) then best = c end
    end
    if best == nil then break end
    local head = take(best[1], best[3])
    best[2] = best[2] - 1
    best[4] = head and entry_id(head) or nil
  end
end
return out
"""

# ARGV: budget, then (id, token, fingerprint, host, entry) per item. Returns the ids refused.
ACK = COMMON + """
local budget = tonumber(ARGV[1])
local refused, fetched = {}, {}
for i = 2, #ARGV, 5 do
  local id, token, fp, host, entry = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local raw = redis.call('HGET', P .. 'leased', id)
  local done = false
  if raw then
    local rec = cjson.decode(raw)
    if rec[1] == token then
      end_lease(id, rec)
      done = true
    else
      table.insert(refused, id)   -- leased again, to another attempt: its result will count
    end
  else
    local state = redis.call('HGET', P .. 'seen', fp)
    if state == 'q' and redis.call('LREM', P .. 'q:' .. host, 1, entry) == 1 then
      -- its lease expired and it went back to the queue, but nobody leased it again: take this result
      set_head(host)
      redis.call('HINCRBY', P .. 'n', 'queued', -1)
      done = true
    elseif state ~= token then
      table.insert(refused, id)   -- done by another attempt
    end                           -- else acknowledged by this very lease before: harmless
  end
  if done then
    redis.call('HSET', P .. 'seen', fp, token)
    redis.call('HINCRBY', P .. 'n', 'done', 1)
    fetched[host] = (fetched[host] or 0) + 1
  end
end
for host, count in pairs(fetched) do
  local h = P .. 'h:' .. host
  local total = redis.call('HINCRBY', h, 'fetched', count)
  if redis.call('ZREM', P .. 'parked', host) == 1 then redis.call('HDEL', h, 'state', 'until', 'error') end
  if budget > 0 and total >= budget and redis.call('SADD', P .. 'spent', host) == 1 then
    -- the host's budget is reached: the rest of its URLs are never fetched
    local left = redis.call('LLEN', P .. 'q:' .. host)
    redis.call('DEL', P .. 'q:' .. host)
    redis.call('ZREM', P .. 'heads', host)
    redis.call('HINCRBY', P .. 'n', 'queued', -left)
    redis.call('HSET', h, 'state', 'budget')
  end
end
if #refused > 0 then redis.call('HINCRBY', P .. 'n', 'refused', #refused) end
return refused
"""

# ARGV: worker, then (id, token) per item, or nothing for every lease of the worker.
# Returns (released, refused).
RELEASE = COMMON + """
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
"""

# ARGV: (id, token, fingerprint) per item. Ends the leases of URLs ruled out at their visit: they
# are neither done nor queued, but excluded (found again with no exclusion, they are queued).
EXCLUDE = COMMON + """
for i = 1, #ARGV, 3 do
  local id, token, fp = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local raw = redis.call('HGET', P .. 'leased', id)
  if raw then
    local rec = cjson.decode(raw)
    if rec[1] == token then
      end_lease(id, rec)
      redis.call('HSET', P .. 'seen', fp, 'e')
    end
  end
end
return 0
"""

# ARGV: worker, lease ms, heartbeat ms, then (id, token) per item. Returns the ids whose lease is lost.
RENEW = COMMON + """
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
"""

# Returns the hosts with queued URLs, except those parked until later.
HOSTS_WITH_WORK = COMMON + """
local now = clock()
reclaim(now)
local parked = {}
for _, host in ipairs(redis.call('ZRANGEBYSCORE', P .. 'parked', '(' .. now, '+inf')) do parked[host] = true end
local hosts = {}
for _, host in ipairs(redis.call('ZRANGE', P .. 'heads', 0, -1)) do
  if not parked[host] then table.insert(hosts, host) end
end
return hosts
"""

RECLAIM = COMMON + "return reclaim(clock())"

# Returns 1 when this run of the job is over: no lease is out (expired or not: an expired lease is
# work until a worker takes it back) and every host with queued URLs is parked until later.
IDLE = COMMON + """
if redis.call('HLEN', P .. 'leased') > 0 then return 0 end
local now = clock()
for _, host in ipairs(redis.call('ZRANGE', P .. 'heads', 0, -1)) do
  local parked_until = redis.call('ZSCORE', P .. 'parked', host)
  if not parked_until or tonumber(parked_until) <= now + tonumber(ARGV[1] or 0) then return 0 end
end
return 1
"""

# ARGV: a fresh marker, then seed hosts to add. Joins the job: a job with seed hosts and no marker
# (new, or from before markers) gets the fresh one. Returns (the marker or '', the seed hosts).
JOIN = COMMON + """
local key = P .. 'seed_hosts'
for i = 2, #ARGV do redis.call('SADD', key, ARGV[i]) end
local marker = redis.call('GET', P .. 'job')
if not marker and redis.call('EXISTS', key) == 1 then
  redis.call('SET', P .. 'job', ARGV[1])
  marker = ARGV[1]
end
return {marker or '', redis.call('SMEMBERS', key)}
"""

# ARGV: host, until ms, until (ISO), error.
PARK = COMMON + """
redis.call('ZADD', P .. 'parked', ARGV[2], ARGV[1])
redis.call('HSET', P .. 'h:' .. ARGV[1], 'state', 'parked', 'until', ARGV[3], 'error', ARGV[4])
"""
