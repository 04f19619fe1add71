-- Read one ticket. ARGV: id. Returns {} when unknown, else
-- {event, rank, service times, seen, now_ms}.
local s, now_ms = now()
local t = ticket_table(ARGV[1])
if not t then return {} end
local rank, times, seen = queue_context(t.status == 'waiting' and t.id or nil, t.service)
return { event_json('ticket', t, now_ms), rank, times, seen, now_ms }
