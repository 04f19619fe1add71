-- Apply one batch of ticket events to a branch's statistics rollups, each
-- event at most once: events at or below the source's watermark are
-- skipped, the rest applied, the watermark moved, all in this one script.
-- A batch sent twice, or resent after a lost answer, changes nothing more.
-- The figures themselves are decided in Rust (domain::stats::event_ops);
-- this script only executes the ops, so the KPI rules live in one place.
--
-- ARGV: epoch (0 = this group's own outbox, no epoch check), group, source,
-- through_ms (every event of the source up to then is in this batch or an
-- earlier one), ttl_s of day rollups, after (the batch holds every event of
-- the source after this stream id; '' = not checked), lost (the sender no
-- longer holds the events between this store's watermark and `after`: how
-- many), then per event: stream id, op count, and 4 values per op: opcode
-- (I incr, M max, Z zadd, R zrem, S hset, D hdel), key suffix, field or
-- member, value.
-- Returns {'ok', applied_through, applied, counted, lost recorded},
-- {'behind', applied_through, counted} (the watermark is below `after` and
-- nothing is lost: resend from the watermark; nothing changed) or
-- {'stale-epoch', highest}. `counted` is how many events of the source this
-- store has accounted for: applied, or declared lost.
local epoch, group, source = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local through_ms, ttl_s = tonumber(ARGV[4]), tonumber(ARGV[5])
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
local counted_key = P .. 'stats-counted'

-- Reconciliation: a batch that continues from a point above this store's
-- watermark (this store was restored from an older backup, or lost its
-- data) would leave a hole. Without a declared loss nothing is applied and
-- the watermark goes back to the sender, which resends from it; with one,
-- the loss is recorded (once: a resend finds the watermark moved on).
local after, lost = ARGV[6], tonumber(ARGV[7]) or 0
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

-- The fresh events' ops are folded in Lua tables first and written once
-- per field at the end: increments add up, a max keeps the largest, and for
-- a sorted-set member or a hash field set or deleted several times the last
-- change wins. The end state is the same as applying the ops one by one (the
-- differential test checks exactly that), with one Redis call per touched
-- field instead of one per op.
local incr, maxes, members, fields = {}, {}, {}, {}
local function slot(t, key)
  local s = t[key]
  if not s then s = {}; t[key] = s end
  return s
end
local applied = 0
local i = 8
while i <= #ARGV do
  local id, nops = ARGV[i], tonumber(ARGV[i + 1])
  local ms, seq = parse(id)
  local fresh = ms > mark_ms or (ms == mark_ms and seq > mark_seq)
  local j = i + 2
  if fresh then
    for _ = 1, nops do
      local op, key, field, value = ARGV[j], P .. ARGV[j + 1], ARGV[j + 2], ARGV[j + 3]
      if op == 'I' then
        local s = slot(incr, key)
        s[field] = (s[field] or 0) + tonumber(value)
      elseif op == 'M' then
        local s, v = slot(maxes, key), tonumber(value)
        if not s[field] or v > s[field] then s[field] = v end
      elseif op == 'Z' then
        slot(members, key)[field] = tonumber(value)
      elseif op == 'R' then
        slot(members, key)[field] = false
      elseif op == 'S' then
        slot(fields, key)[field] = value
      elseif op == 'D' then
        slot(fields, key)[field] = false
      end
      j = j + 4
    end
    mark, mark_ms, mark_seq = id, ms, seq
    applied = applied + 1
  else
    j = j + 4 * nops
  end
  i = j
end

local touched = {}
for key, s in pairs(incr) do
  touched[key] = true
  for field, by in pairs(s) do redis.call('HINCRBY', key, field, by) end
end
for key, s in pairs(maxes) do
  touched[key] = true
  for field, v in pairs(s) do
    local cur = tonumber(redis.call('HGET', key, field))
    if not cur or v > cur then redis.call('HSET', key, field, v) end
  end
end
for key, s in pairs(members) do
  for member, score in pairs(s) do
    if score then redis.call('ZADD', key, score, member) else redis.call('ZREM', key, member) end
  end
end
for key, s in pairs(fields) do
  for field, value in pairs(s) do
    if value then redis.call('HSET', key, field, value) else redis.call('HDEL', key, field) end
  end
end

-- Day rollups live at least ttl_s from their first event (≥ 400 days).
for key in pairs(touched) do
  if redis.call('TTL', key) < 0 then redis.call('EXPIRE', key, ttl_s) end
end
local counted = redis.call('HGET', counted_key, source) or '0'
if applied > 0 or recorded > 0 then redis.call('HSET', P .. 'stats-wm', source, mark) end
if applied > 0 then
  redis.call('HINCRBY', P .. 'stats-meta', 'applied', applied)
  counted = redis.call('HINCRBY', counted_key, source, applied)
end
local s, now_ms = now()
-- Tickets left in the waiting set by a lost history (no close event will
-- ever come) do not linger: the day close ends every ticket within a day.
-- Each service's waiting set is pruned when a batch touches it.
if through_ms > 0 then
  for key in pairs(members) do
    redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. (through_ms - 3 * 86400000))
  end
end
local prev = tonumber(redis.call('HGET', P .. 'stats-meta', 'through_ms') or '0')
if through_ms > prev then redis.call('HSET', P .. 'stats-meta', 'through_ms', through_ms) end
redis.call('HSET', P .. 'stats-meta', 'last_report_ms', now_ms, 'group', group)
return { 'ok', mark or '', tostring(applied), tostring(counted), tostring(recorded) }
