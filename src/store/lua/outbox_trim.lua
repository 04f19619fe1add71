-- Trim a branch's outbox below what every consumer is past (a fenced
-- script: only the group's current leader). ARGV: source, acked (the master's applied_through; '' on the master group, which ships
-- nothing), ship (1 on a slave group: the master must have it too).
-- The local aggregator's watermark is the other consumer. Returns
-- {'ok', trimmed}.
local source, acked, ship = ARGV[1], ARGV[2], ARGV[3] == '1'
local function parse(id)
  local ms, seq = string.match(id or '', '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
if acked ~= '' then
  local am, as = parse(acked)
  local prev = redis.call('HGET', P .. 'stats-shipped', source)
  local pm, ps = parse(prev)
  if am and (not pm or am > pm or (am == pm and as > ps)) then
    redis.call('HSET', P .. 'stats-shipped', source, acked)
  end
end
local lm, ls = parse(redis.call('HGET', P .. 'stats-wm', source))
if not lm then return { 'ok', '0' } end
if ship then
  local sm, ss = parse(redis.call('HGET', P .. 'stats-shipped', source))
  if not sm then return { 'ok', '0' } end
  if sm < lm or (sm == lm and ss < ls) then lm, ls = sm, ss end
end
-- MINID keeps entries at or above it: everything up to (lm, ls) goes.
local trimmed = redis.call('XTRIM', P .. 'outbox', 'MINID', lm .. '-' .. (ls + 1))
return { 'ok', tostring(trimmed) }
