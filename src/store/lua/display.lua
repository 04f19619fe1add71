-- The latest calls, newest first: {number, counter, announced_ms, id} per ticket.
local out = {}
for _, id in ipairs(redis.call('LRANGE', P .. 'display', 0, DISPLAY_LENGTH - 1)) do
  local f = redis.call('HMGET', P .. 't:' .. id, 'number', 'counter', 'announced_ms')
  if f[1] and f[2] and f[3] then
    table.insert(out, f[1]); table.insert(out, f[2]); table.insert(out, f[3]); table.insert(out, id)
  end
end
return out
