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
-- earlier one), ttl_s of day rollups, after (the batch holds every event of
-- the source after this stream id; '' = not checked), lost (the sender no
-- longer holds the events between this store's watermark and `after`: how
-- many), the batch's first and last stream id and event count ('' '' 0: no
-- events, only the bookkeeping), then groups of ops on one key: opcode
-- (I incr, M max, Z zadd, R zrem, S hset, D hdel), key suffix, n, then n
-- field/value pairs (I M S), n score/member pairs (Z, as ZADD takes them)
-- or n fields/members (R D).
-- Returns {'ok', applied_through, applied, counted, lost recorded},
-- {'overlap', watermark} (the batch starts at or below the watermark:
-- nothing changed; resend what is above it), {'behind', applied_through,
-- counted} (the watermark is below `after` and nothing is lost: resend from
-- the watermark; nothing changed) or {'stale-epoch', highest}. `counted` is
-- how many events of the source this store has accounted for: applied, or
-- declared lost.
local epoch, group, source = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local through_ms, ttl_s = tonumber(ARGV[4]), tonumber(ARGV[5])
local after, lost = ARGV[6], tonumber(ARGV[7]) or 0
local first, last, count = ARGV[8], ARGV[9], tonumber(ARGV[10])
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
local mark_ms, mark_seq = -1, -1
if mark then mark_ms, mark_seq = parse(mark) end
if count > 0 and mark then
  local ms, seq = parse(first)
  if not (ms > mark_ms or (ms == mark_ms and seq > mark_seq)) then
    return { 'overlap', mark }
  end
end
local counted_key = P .. 'stats-counted'

-- Reconciliation: a batch that continues from a point above this store's
-- watermark (this store was restored from an older backup, or lost its
-- data) would leave a hole. Without a declared loss nothing is applied and
-- the watermark goes back to the sender, which resends from it; with one,
-- the loss is recorded (once: a resend finds the watermark moved on).
local recorded = 0
if after ~= '' then
  local am, as = parse(after)
  local wm, ws = math.max(mark_ms, 0), math.max(mark_seq, 0)
  if am and (am > wm or (am == wm and as > ws)) then
    if lost <= 0 then
      return { 'behind', mark or '', redis.call('HGET', counted_key, source) or '0' }
    end
    -- The lost events count as accounted for, and the watermark moves to
    -- `after`, so they are reported once and never asked for again.
    redis.call('HINCRBY', P .. 'stats-meta', 'lost', lost)
    redis.call('HINCRBY', counted_key, source, lost)
    recorded = lost
    mark, mark_ms, mark_seq = after, am, as
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
local i = 11
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
local counted = redis.call('HGET', counted_key, source) or '0'
if count > 0 then mark = last end
if count > 0 or recorded > 0 then redis.call('HSET', P .. 'stats-wm', source, mark) end
if count > 0 then
  redis.call('HINCRBY', P .. 'stats-meta', 'applied', count)
  counted = redis.call('HINCRBY', counted_key, source, count)
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
return { 'ok', mark or '', tostring(count), tostring(counted), tostring(recorded) }
