-- reclaim.lua: Put up to 1,000 expired leases back in their hosts' queues now.
--
-- KEYS[1]  the job's key prefix
-- ARGV     nothing
--          (after the job's marker, which common.lua checks and takes off)
-- Returns  how many
return reclaim(clock())
