-- Apply one batch of ticket events to a branch's statistics rollups, each
-- event at most once: the batch is applied only if all of it is above the
-- source's watermark, and the watermark moves to its last event, both in
-- this one script. A batch sent twice, or resent after a lost answer, is
-- answered 'behind' with the watermark and changes nothing; the caller
-- drops the events at or below it and sends the rest.
-- The figures themselves are decided in Rust (domain::stats::event_ops) and
-- the batch's ops arrive folded there (domain::stats::Folded: one op per
-- field or member), so this script only executes them and the KPI rules
-- live in one place.
--
-- ARGV: epoch (0 = this group's own outbox, no epoch check), group, source,
-- through_ms (every event of the source up to then is in this batch or an
-- earlier one), ttl_s of day rollups, the batch's first and last stream id
-- and event count ('' '' 0: no events, only the bookkeeping), then groups
-- of ops on one key: opcode (I incr, M max, Z zadd, R zrem, S hset,
-- D hdel), key suffix, n, then n field/value pairs (I M S), n score/member
-- pairs (Z, as ZADD takes them) or n fields/members (R D).
-- Returns {'ok', applied_through, applied}, {'behind', watermark} or
-- {'stale-epoch', highest}.
local epoch, group, source = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local through_ms, ttl_s = tonumber(ARGV[4]), tonumber(ARGV[5])
local first, last, count = ARGV[6], ARGV[7], tonumber(ARGV[8])
if epoch > 0 then
  -- A deposed leader's batch is refused: the master keeps the highest
  -- epoch seen per group (in the branch's slot, so the script stays in one).
  local highest = tonumber(redis.call('HGET', P .. 'stats-epoch', group) or '0')
  if epoch < highest then return { 'stale-epoch', tostring(highest) } end
  if epoch > highest then redis.call('HSET', P .. 'stats-epoch', group, epoch) end
end

local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local mark = redis.call('HGET', P .. 'stats-wm', source)
if count > 0 and mark then
  local mark_ms, mark_seq = parse(mark)
  local ms, seq = parse(first)
  if not (ms > mark_ms or (ms == mark_ms and seq > mark_seq)) then
    return { 'behind', mark }
  end
end

-- Commands with many values take them straight from ARGV, in slices
-- (Lua's unpack has a stack limit).
local SLICE = 512 -- even: a score/member or field/value pair is never split
local function sliced(cmd, key, from, to)
  for at = from, to, SLICE do
    redis.call(cmd, key, unpack(ARGV, at, math.min(at + SLICE - 1, to)))
  end
end
local days, waiting = {}, {}
local i = 9
while i <= #ARGV do
  local op, key, n = ARGV[i], P .. ARGV[i + 1], tonumber(ARGV[i + 2])
  local j = i + 3
  if op == 'I' then
    days[key] = true
    for k = j, j + 2 * n - 1, 2 do redis.call('HINCRBY', key, ARGV[k], ARGV[k + 1]) end
    j = j + 2 * n
  elseif op == 'M' then
    days[key] = true
    for k = j, j + 2 * n - 1, 2 do
      local cur, v = tonumber(redis.call('HGET', key, ARGV[k])), tonumber(ARGV[k + 1])
      if not cur or v > cur then redis.call('HSET', key, ARGV[k], v) end
    end
    j = j + 2 * n
  elseif op == 'Z' or op == 'S' then
    if op == 'Z' then waiting[key] = true end
    sliced(op == 'Z' and 'ZADD' or 'HSET', key, j, j + 2 * n - 1)
    j = j + 2 * n
  elseif op == 'R' or op == 'D' then
    if op == 'R' then waiting[key] = true end
    sliced(op == 'R' and 'ZREM' or 'HDEL', key, j, j + n - 1)
    j = j + n
  else
    return redis.error_reply('unknown op ' .. tostring(op))
  end
  i = j
end

-- Day rollups live at least ttl_s from their first event (≥ 400 days).
for key in pairs(days) do
  if redis.call('TTL', key) < 0 then redis.call('EXPIRE', key, ttl_s) end
end
if count > 0 then
  mark = last
  redis.call('HSET', P .. 'stats-wm', source, mark)
  redis.call('HINCRBY', P .. 'stats-meta', 'applied', count)
end
local s, now_ms = now()
-- Tickets left in the waiting set by a lost history (no close event will
-- ever come) do not linger: the day close ends every ticket within a day.
-- Each service's waiting set is pruned when a batch touches it.
if through_ms > 0 then
  for key in pairs(waiting) do
    redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. (through_ms - 3 * 86400000))
  end
end
local prev = tonumber(redis.call('HGET', P .. 'stats-meta', 'through_ms') or '0')
if through_ms > prev then redis.call('HSET', P .. 'stats-meta', 'through_ms', through_ms) end
redis.call('HSET', P .. 'stats-meta', 'last_report_ms', now_ms, 'group', group)
return { 'ok', mark or '', tostring(count) }
