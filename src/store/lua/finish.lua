-- End the counter's current ticket. ARGV: counter, status (served|no_show),
-- event type. Returns {'ok', event} or {'no-current'}.
local counter, status, kind = ARGV[1], ARGV[2], ARGV[3]
local at_ms = now_ms()
local current = P .. 'current'
local cur = redis.call('HGET', current, counter)
if not cur then return { 'no-current' } end
redis.call('HDEL', current, counter)
counter_free(counter, at_ms)
local ev = finish_ticket(cur, status, kind, at_ms)
if not ev then return { 'no-current' } end
return { 'ok', ev }
