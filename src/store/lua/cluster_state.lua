-- Who leads, the epoch, and the live members, read at one instant.
-- KEYS[1]: group prefix. ARGV: member expiry ms.
-- Returns {lease holder or '', epoch, now_ms, {id, addr, last_seen_ms, ...}}.
local at_ms = now_ms()
local members = {}
local seen = redis.call('ZRANGEBYSCORE', G .. 'members', at_ms - tonumber(ARGV[1]), '+inf', 'WITHSCORES')
for i = 1, #seen, 2 do
  table.insert(members, seen[i])
  table.insert(members, redis.call('HGET', G .. 'member-addr', seen[i]) or '')
  table.insert(members, seen[i + 1])
end
return { redis.call('GET', G .. 'lease') or '', redis.call('GET', G .. 'epoch') or '0', at_ms, members }
