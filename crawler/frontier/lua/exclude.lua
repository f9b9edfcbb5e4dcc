-- exclude.lua: End the leases of URLs ruled out at their visit (robots.txt): neither done nor queued, but
-- excluded (found again with no exclusion, they are queued).
--
-- KEYS[1]  the job's key prefix
-- ARGV     (id, token, fingerprint) per item
--          (after the job's marker, which common.lua checks and takes off)
-- Returns  nothing
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
