-- Trim a branch's outbox below what every consumer is past (a fenced
-- script: only the group's current leader). ARGV: source, acked (the
-- master's applied_through, its watermark now, which may be lower than an
-- earlier one after the master's store was restored; '' on the master
-- group, which ships nothing), ship (1 on a slave group: the master must
-- have it too), retention_ms (acknowledged events are kept this long, so a
-- master restored from a recent backup can be refilled exactly), counted
-- (how many events of the source the master has accounted for; '' if
-- unknown), kept beside `acked` so the backlog can be told.
-- The local aggregator's watermark is the other consumer. What was trimmed
-- is remembered in `outbox-trimmed` (source, last trimmed id, how many), so
-- a master that later needs trimmed events learns it lost them.
-- Returns {'ok', trimmed}.
local source, acked, ship = ARGV[1], ARGV[2], ARGV[3] == '1'
local retention_ms = tonumber(ARGV[4]) or 0
local function parse(id)
  local ms, seq = string.match(id or '', '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
if acked ~= '' and parse(acked) then
  redis.call('HSET', P .. 'stats-shipped', source, acked)
  if tonumber(ARGV[5]) then
    redis.call('HSET', P .. 'stats-shipped', source .. '|counted', ARGV[5])
  end
end
local lm, ls = parse(redis.call('HGET', P .. 'stats-wm', source))
if not lm then return { 'ok', '0' } end
if ship then
  local sm, ss = parse(redis.call('HGET', P .. 'stats-shipped', source))
  if not sm then return { 'ok', '0' } end
  if sm < lm or (sm == lm and ss < ls) then lm, ls = sm, ss end
end
-- MINID keeps entries at or above it: everything up to (lm, ls) may go,
-- and nothing younger than the retention.
local bound = lm .. '-' .. (ls + 1)
local _, now = now()
local keep_from = now - retention_ms
if keep_from <= lm then bound = keep_from .. '-0' end
local outbox = P .. 'outbox'
-- Nothing below the bound (the usual case while the retention holds
-- everything): said by the oldest entry. XREVRANGE from a bound below every
-- entry would walk the whole stream back from its end (Redis seeks the last
-- node when no node starts at or below the bound): milliseconds per call at
-- a few hundred thousand entries, on every shipping round.
local oldest = redis.call('XRANGE', outbox, '-', '+', 'COUNT', 1)[1]
if not oldest then return { 'ok', '0' } end
local om, oseq = parse(oldest[1])
local bm, bs = parse(bound)
if om > bm or (om == bm and oseq >= bs) then return { 'ok', '0' } end
local last = redis.call('XREVRANGE', outbox, '(' .. bound, '-', 'COUNT', 1)[1]
if not last then return { 'ok', '0' } end
local trimmed = redis.call('XTRIM', outbox, 'MINID', bound)
local record = P .. 'outbox-trimmed'
if redis.call('HGET', record, 'source') ~= source then
  redis.call('DEL', record)
  redis.call('HSET', record, 'source', source)
end
redis.call('HSET', record, 'id', last[1])
redis.call('HINCRBY', record, 'n', trimmed)
return { 'ok', tostring(trimmed) }
