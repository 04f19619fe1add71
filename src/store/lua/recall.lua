-- Announce the counter's current ticket again. ARGV: counter.
-- Returns {'ok', event} or {'no-current'}.
local counter = ARGV[1]
local at_ms = now_ms()
local cur = redis.call('HGET', P .. 'current', counter)
if not cur then return { 'no-current' } end
local tk = P .. 't:' .. cur
if redis.call('HGET', tk, 'status') ~= 'called' then return { 'no-current' } end
redis.call('HSET', tk, 'announced_ms', at_ms)
show_on_display(cur)
return { 'ok', emit('ticket-recalled', ticket_table(cur), at_ms) }
