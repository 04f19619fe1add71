-- Record how the slave group's link to its master looks, for every node's
-- GET /api/v1/cluster. (Runs after fence_group.lua.)
-- ARGV (after the fence prelude took the epoch): connected (0/1),
-- contacted (0/1), master URL.
local at_ms = now_ms()
local key = G .. 'upstream'
redis.call('HSET', key, 'connected', ARGV[1], 'master', ARGV[3])
if ARGV[2] == '1' then redis.call('HSET', key, 'last_contact_ms', at_ms) end
return { 'ok' }
