-- Send the counter's current ticket back to waiting in another service's
-- queue, keeping its place by original issue time. ARGV: counter, service.
-- Returns {'ok', event, rank, service times, seen} or {'no-current'}.
local counter, to = ARGV[1], ARGV[2]
local at_ms = now_ms()
local current = P .. 'current'
local cur = redis.call('HGET', current, counter)
if not cur then return { 'no-current' } end
local tk = P .. 't:' .. cur
if redis.call('HGET', tk, 'status') ~= 'called' then return { 'no-current' } end
local from = redis.call('HGET', tk, 'service')
local called_ms = tonumber(redis.call('HGET', tk, 'called_ms'))
redis.call('HDEL', current, counter)
redis.call('HDEL', tk, 'called_ms', 'announced_ms', 'counter')
redis.call('HSET', tk, 'status', 'waiting', 'service', to)
redis.call('ZADD', P .. 'q:' .. to, redis.call('HGET', tk, 'issued_us'), cur)
redis.call('SADD', P .. 'queues', to)
queue_joined(to, at_ms)
counter_free(counter, at_ms)
redis.call('LREM', P .. 'display', 0, cur)
-- The transfer ends the transaction at this counter (statistics).
local ev = emit('ticket-transferred', ticket_table(cur), at_ms,
  { from_service = from, from_counter = counter, from_called_ms = called_ms })
local rank, times, seen = queue_context(cur, to)
return { 'ok', ev, rank, times, seen }
