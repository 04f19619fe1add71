-- Call one waiting ticket by its printed number instead of the next by the
-- matrix rule. ARGV: counter, number, utc_offset_s, then the services of the
-- counter's row. Only a ticket issued today (business day in the branch's
-- zone, the same day issue.lua numbers by) and waiting in one of those
-- services is called; else {'not-waiting'} and nothing changes, not even
-- the counter's current ticket. Otherwise the current ticket is finished as
-- served first, as a plain call does: {'ok', events...}.
local counter, number, offset = ARGV[1], ARGV[2], tonumber(ARGV[3])
local s, at_ms = now()
local today = tostring(math.floor((s + offset) / 86400))

local found_id, found_service
for i = 4, #ARGV do
  local service = ARGV[i]
  -- Queues are a day's customers of one service: a scan is cheap, and no
  -- index has to be kept in step by every other script.
  for _, id in ipairs(redis.call('ZRANGE', P .. 'q:' .. service, 0, -1)) do
    local t = redis.call('HMGET', P .. 't:' .. id, 'number', 'day')
    if t[1] == number and t[2] == today then
      found_id, found_service = id, service
      break
    end
  end
  if found_id then break end
end
if not found_id then return { 'not-waiting' } end

local out = { 'ok' }
local free_ms = finish_current(counter, at_ms, out)
call_ticket(found_id, found_service, counter, at_ms, out, { unpack(ARGV, 4) }, free_ms)
return out
