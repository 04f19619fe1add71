-- Prelude of every leader-only write to one branch's keys. The group epoch
-- lives in another slot, so each branch slot keeps its own fence: the
-- highest epoch that has written here. A lower epoch is refused; a higher
-- one raises the fence. A new leader raises the fence of every branch it
-- serves right after taking the lease, so from then on its predecessor's
-- writes are refused even where the new leader has written nothing yet.
-- KEYS[1]: branch prefix, ARGV[1]: the epoch the caller holds.
local P = KEYS[1]
local held = tonumber(ARGV[1])
local fence = tonumber(redis.call('GET', P .. 'fence') or '0')
if held < 1 or held < fence then return { 'fenced', tostring(fence) } end
if held > fence then redis.call('SET', P .. 'fence', held) end
