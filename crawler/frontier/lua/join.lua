-- join.lua: Join the job: a job with seed hosts and no marker (new, or from before markers) gets the
-- fresh one.
--
-- KEYS[1]  the job's key prefix
-- ARGV     a fresh marker, then seed hosts to add
--          (after the job's marker, which common.lua checks and takes off)
-- Returns  (the marker or '', the seed hosts)
local key = P .. 'seed_hosts'
for i = 2, #ARGV do redis.call('SADD', key, ARGV[i]) end
local marker = redis.call('GET', P .. 'job')
if not marker and redis.call('EXISTS', key) == 1 then
  redis.call('SET', P .. 'job', ARGV[1])
  marker = ARGV[1]
end
return {marker or '', redis.call('SMEMBERS', key)}
