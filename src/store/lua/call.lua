-- Finish the counter's current ticket as served (if any), then call the
-- next one by the matrix rule. ARGV: counter, then service/priority pairs
-- sorted by priority. Returns the events in order; the last is
-- ticket-called when a ticket was called.
local counter = ARGV[1]
local at_ms = now_ms()
local out = {}
local free_ms = finish_current(counter, at_ms, out)

local services = {}
for i = 2, #ARGV, 2 do table.insert(services, ARGV[i]) end

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

call_ticket(best_id, best_service, counter, at_ms, out, services, free_ms)
return out
