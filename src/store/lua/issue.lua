-- Issue a ticket. ARGV: service, prefix, first, last, utc_offset_s,
-- floor_day, floor_nth, id_floor.
-- The business day is computed here from the Redis clock and the branch's
-- UTC offset, so all nodes agree on when the numbering restarts.
-- The floor is the highest count of that day the node has seen (store/
-- memory.rs): a store that lost its counter continues above it instead of
-- giving the day's numbers again; likewise ticket ids continue above the
-- highest the node has seen, so an old id never names a new ticket.
local service, prefix = ARGV[1], ARGV[2]
local first, last, offset = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local floor_day = tonumber(ARGV[6]) or -1
local floor_nth, id_floor = tonumber(ARGV[7]) or 0, tonumber(ARGV[8]) or 0
local s, at_ms, at_us = now()
local day = math.floor((s + offset) / 86400)
local seq_key = P .. 'seq:' .. service .. ':' .. day
local nth = redis.call('INCR', seq_key)
if floor_day == day and nth <= floor_nth then
  nth = floor_nth + 1
  redis.call('SET', seq_key, nth, 'EX', SEQUENCE_TTL_S)
elseif nth == 1 then
  redis.call('EXPIRE', seq_key, SEQUENCE_TTL_S)
end
local seq = first + (nth - 1) % (last - first + 1)
local number = prefix .. string.format('%0' .. string.len(tostring(last)) .. 'd', seq)
local next_id = redis.call('INCR', P .. 'next-id')
if next_id <= id_floor then
  next_id = id_floor + 1
  redis.call('SET', P .. 'next-id', next_id)
end
local id = tostring(next_id)
redis.call('HSET', P .. 't:' .. id, 'service', service, 'number', number, 'status', 'waiting',
  'issued_ms', at_ms, 'issued_us', at_us, 'day', day, 'nth', nth)
redis.call('ZADD', P .. 'q:' .. service, at_us, id)
redis.call('SADD', P .. 'queues', service)
local ev = emit('ticket-issued',
  { id = id, service = service, number = number, status = 'waiting', issued_ms = at_ms,
    day = day, nth = nth }, at_ms)
local rank, times, seen = queue_context(id, service)
-- The newest ticket is at the head only of a queue that was empty (older
-- tickets score lower): only then can a waiting stretch start, so the
-- common case pays no extra write.
if rank == 0 then queue_joined(service, at_ms) end
return { ev, rank, times, seen }
