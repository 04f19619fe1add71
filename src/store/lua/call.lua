-- Finish the counter's current ticket as served (if any), then call the
-- next one by the matrix rule. ARGV: counter, then service/priority pairs
-- sorted by priority. Returns the events in order; the last is
-- ticket-called when a ticket was called.
local counter = ARGV[1]
local at_ms = now_ms()
local out = {}
local current = P .. 'current'
local cur = redis.call('HGET', current, counter)
if cur then
  local ev = finish_ticket(cur, 'served', 'ticket-served', at_ms)
  if ev then table.insert(out, ev) end
  redis.call('HDEL', current, counter)
end
redis.call('HSET', P .. 'seen', counter, at_ms)

local best_id, best_score, best_service, best_priority
for i = 2, #ARGV, 2 do
  local service, priority = ARGV[i], tonumber(ARGV[i + 1])
  if best_id and priority > best_priority then break end
  local head = redis.call('ZRANGE', P .. 'q:' .. service, 0, 0, 'WITHSCORES')
  if head[1] then
    local score = tonumber(head[2])
    if not best_id or score < best_score then
      best_id, best_score, best_service, best_priority = head[1], score, service, priority
    end
  end
end
if not best_id then return out end

-- ZREM inside the same script as the ZRANGE: no other counter can take it.
redis.call('ZREM', P .. 'q:' .. best_service, best_id)
redis.call('HSET', P .. 't:' .. best_id, 'status', 'called', 'called_ms', at_ms,
  'announced_ms', at_ms, 'counter', counter)
redis.call('HSET', current, counter, best_id)
show_on_display(best_id)
table.insert(out, emit('ticket-called', ticket_table(best_id), at_ms))
return out
