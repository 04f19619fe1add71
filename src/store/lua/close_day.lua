-- Close a business day: tickets issued before the cutoff and still waiting
-- or called become 'closed', each with a ticket-closed event. Runs at most
-- once per branch and day: the marker is written in this same script.
-- ARGV (after the fence prelude took the epoch): day number, cutoff (µs
-- since the epoch).
-- Returns {'closed', n}, {'already', last closed day} or {'fenced', fence}.
local day, cutoff = tonumber(ARGV[1]), tonumber(ARGV[2])
local last = tonumber(redis.call('GET', P .. 'closed-day') or '-1')
if last >= day then return { 'already', tostring(last) } end
local at_ms = now_ms()
local closed = 0
local function close(id)
  local tk = P .. 't:' .. id
  redis.call('HSET', tk, 'status', 'closed', 'finished_ms', at_ms)
  redis.call('EXPIRE', tk, FINISHED_TTL_S)
  emit('ticket-closed', ticket_table(id), at_ms)
  closed = closed + 1
end
for _, service in ipairs(redis.call('SMEMBERS', P .. 'queues')) do
  local q = P .. 'q:' .. service
  local ids = redis.call('ZRANGEBYSCORE', q, '-inf', '(' .. cutoff)
  for _, id in ipairs(ids) do
    redis.call('ZREM', q, id)
    close(id)
  end
  queue_left(service)
end
local current = redis.call('HGETALL', P .. 'current')
for i = 1, #current, 2 do
  local id = current[i + 1]
  local tk = P .. 't:' .. id
  local issued = tonumber(redis.call('HGET', tk, 'issued_us') or '0')
  if redis.call('HGET', tk, 'status') == 'called' and issued < cutoff then
    redis.call('HDEL', P .. 'current', current[i])
    counter_free(current[i], at_ms)
    close(id)
  end
end
redis.call('SET', P .. 'closed-day', day)
return { 'closed', tostring(closed) }
