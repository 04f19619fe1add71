-- Replace the group's mirrored configuration with a newer snapshot.
-- (Fenced: only the slave group's current leader.)
-- ARGV (after the fence prelude took the epoch): version, then branch id /
-- document pairs.
-- Returns {'applied', version} or {'stale', stored version}: a snapshot is
-- never applied over a newer one, whoever leads.
local version = tonumber(ARGV[1])
local stored = tonumber(redis.call('GET', G .. 'version') or '0')
if version <= stored then return { 'stale', tostring(stored) } end
redis.call('DEL', G .. 'branches')
for i = 2, #ARGV, 2 do
  redis.call('HSET', G .. 'branches', ARGV[i], ARGV[i + 1])
end
redis.call('SET', G .. 'version', version)
redis.call('PUBLISH', G .. 'config', version)
return { 'applied', tostring(version) }
