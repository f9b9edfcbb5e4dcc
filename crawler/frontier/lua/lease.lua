-- lease.lua: Lease URLs to a worker, within each host's in-flight limit, delay and budget, job-wide.
--
-- KEYS[1]  the job's key prefix
-- ARGV     worker, limit, host ('' for any), lease ms, per_host, delay ms, budget, heartbeat ms
--          (after the job's marker, which common.lua checks and takes off)
-- Returns  (token, host, entry) per URL leased
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
