-- Record how the slave group's link to its master looks, for every node's
-- GET /api/v1/cluster. (Runs after fence_group.lua.)
-- ARGV: epoch, connected (0/1), contacted (0/1), master URL.
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local key = G .. 'upstream'
redis.call('HSET', key, 'connected', ARGV[2], 'master', ARGV[4])
if ARGV[3] == '1' then redis.call('HSET', key, 'last_contact_ms', now_ms) end
return { 'ok' }
