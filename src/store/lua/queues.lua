-- Queue lengths and heads. ARGV: services. Returns
-- {at_ms, {waiting, oldest issue time in us or -1} per service, service times, seen}.
local at_ms = now_ms()
local heads = {}
for i = 1, #ARGV do
  local q = P .. 'q:' .. ARGV[i]
  local head = redis.call('ZRANGE', q, 0, 0, 'WITHSCORES')
  table.insert(heads, redis.call('ZCARD', q))
  table.insert(heads, head[2] or '-1')
end
return { at_ms, heads, redis.call('HGETALL', P .. 'service-time'), redis.call('HGETALL', P .. 'seen') }
