-- Read a branch's outbox after a stream id, for the stats shipper and the
-- local aggregator. ARGV: after ('-' for the start), count, a fresh random
-- source id. The outbox's source identity is created here if missing: a
-- store that lost its history (replaced, restored empty) gets a new one, so
-- its new events are never mistaken for ones already counted.
-- Returns {now_ms, source, trimmed id, trimmed count, id1, event1, …}:
-- the last event of this source trimmed away and how many were ('' and 0
-- when none), so a reader knows which events it can no longer give.
local after, count = ARGV[1], tonumber(ARGV[2])
local s, now_ms = now()
local source = redis.call('GET', P .. 'outbox-source')
if not source then
  source = ARGV[3]
  redis.call('SET', P .. 'outbox-source', source)
end
local start = '-'
if after ~= '-' then start = '(' .. after end
local trimmed = redis.call('HMGET', P .. 'outbox-trimmed', 'source', 'id', 'n')
local out = { tostring(now_ms), source, '', '0' }
if trimmed[1] == source then out[3], out[4] = trimmed[2] or '', trimmed[3] or '0' end
for _, entry in ipairs(redis.call('XRANGE', P .. 'outbox', start, '+', 'COUNT', count)) do
  local fields = entry[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'e' then
      table.insert(out, entry[1])
      table.insert(out, fields[i + 1])
    end
  end
end
return out
