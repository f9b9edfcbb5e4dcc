-- ack.lua: Acknowledge URLs whose pages are stored: fenced by their lease's token.
--
-- KEYS[1]  the job's key prefix
-- ARGV     budget, then (id, token, fingerprint, host, entry) per item
--          (after the job's marker, which common.lua checks and takes off)
-- Returns  the ids refused (their lease went to another worker)
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
