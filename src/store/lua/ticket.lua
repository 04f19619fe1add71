-- Read one ticket. ARGV: id. Returns {} when unknown, else
-- {event, rank, service times, seen, at_ms}.
local at_ms = now_ms()
local t = ticket_table(ARGV[1])
if not t then return {} end
local rank, times, seen = queue_context(t.status == 'waiting' and t.id or nil, t.service)
return { event_json('ticket', t, at_ms), rank, times, seen, at_ms }
