-- Read a branch's outbox after a stream id, for the stats shipper and the
-- local aggregator. ARGV: after ('-' for the start), count, a fresh random
-- source id. The outbox's source identity is created here if missing: a
-- store that lost its history (replaced, restored empty) gets a new one, so
-- its new events are never mistaken for ones already counted.
-- Returns {now_ms, source, id1, event1, id2, event2, …}.
local after, count = ARGV[1], tonumber(ARGV[2])
local s, now_ms = now()
local source = redis.call('GET', P .. 'outbox-source')
if not source then
  source = ARGV[3]
  redis.call('SET', P .. 'outbox-source', source)
end
local start = '-'
if after ~= '-' then start = '(' .. after end
local out = { tostring(now_ms), source }
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
