-- Issue a ticket. ARGV: service, prefix, first, last, utc_offset_s.
-- The business day is computed here from the Redis clock and the branch's
-- UTC offset, so all nodes agree on when the numbering restarts.
local service, prefix = ARGV[1], ARGV[2]
local first, last, offset = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local s, at_ms, at_us = now()
local day = math.floor((s + offset) / 86400)
local seq_key = P .. 'seq:' .. service .. ':' .. day
local nth = redis.call('INCR', seq_key)
if nth == 1 then redis.call('EXPIRE', seq_key, SEQUENCE_TTL_S) end
local seq = first + (nth - 1) % (last - first + 1)
local number = prefix .. string.format('%0' .. string.len(tostring(last)) .. 'd', seq)
local id = tostring(redis.call('INCR', P .. 'next-id'))
redis.call('HSET', P .. 't:' .. id, 'service', service, 'number', number, 'status', 'waiting',
  'issued_ms', at_ms, 'issued_us', at_us, 'day', day)
redis.call('ZADD', P .. 'q:' .. service, at_us, id)
redis.call('SADD', P .. 'queues', service)
local ev = emit('ticket-issued',
  { id = id, service = service, number = number, status = 'waiting', issued_ms = at_ms }, at_ms)
local rank, times, seen = queue_context(id, service)
return { ev, rank, times, seen }
