-- Who leads, the epoch, and the live members, read at one instant.
-- KEYS[1]: group prefix. ARGV: member expiry ms.
-- Returns {lease holder or '', epoch, now_ms, {id, addr, last_seen_ms, ...}}.
local G = KEYS[1]
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local members = {}
local seen = redis.call('ZRANGEBYSCORE', G .. 'members', now_ms - tonumber(ARGV[1]), '+inf', 'WITHSCORES')
for i = 1, #seen, 2 do
  table.insert(members, seen[i])
  table.insert(members, redis.call('HGET', G .. 'member-addr', seen[i]) or '')
  table.insert(members, seen[i + 1])
end
return { redis.call('GET', G .. 'lease') or '', redis.call('GET', G .. 'epoch') or '0', now_ms, members }
