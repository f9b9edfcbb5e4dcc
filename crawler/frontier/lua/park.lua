-- park.lua: Park a host until a time: its URLs wait (hosts_with_work leaves it out) and stats show why.
--
-- KEYS[1]  the job's key prefix
-- ARGV     host, until ms, until (ISO), error
--          (after the job's marker, which common.lua checks and takes off)
-- Returns  nothing
redis.call('ZADD', P .. 'parked', ARGV[2], ARGV[1])
redis.call('HSET', P .. 'h:' .. ARGV[1], 'state', 'parked', 'until', ARGV[3], 'error', ARGV[4])
