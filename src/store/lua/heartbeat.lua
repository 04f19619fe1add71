-- Record that a node is alive and forget members gone silent.
-- KEYS[1]: group prefix. ARGV: node id, advertised URL, expiry ms.
local at_ms = now_ms()
redis.call('ZADD', G .. 'members', at_ms, ARGV[1])
redis.call('HSET', G .. 'member-addr', ARGV[1], ARGV[2])
local gone = redis.call('ZRANGEBYSCORE', G .. 'members', '-inf', at_ms - tonumber(ARGV[3]))
for _, id in ipairs(gone) do
  redis.call('ZREM', G .. 'members', id)
  redis.call('HDEL', G .. 'member-addr', id)
end
return #gone
