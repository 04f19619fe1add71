-- Fencing of a leader-only write to one branch's keys (after branch.lua).
-- The group epoch lives in another slot, so each branch slot keeps its own
-- fence: the highest epoch that has written here. A lower epoch is refused;
-- a higher one raises the fence. A new leader raises the fence of every
-- branch it serves right after taking the lease, so from then on its
-- predecessor's writes are refused even where the new leader has written
-- nothing yet. The caller's epoch is the first argument; it is removed here,
-- so the body sees its own arguments from ARGV[1].
local EPOCH = tonumber(table.remove(ARGV, 1))
local fence = tonumber(redis.call('GET', P .. 'fence') or '0')
if EPOCH < 1 or EPOCH < fence then return { 'fenced', tostring(fence) } end
if EPOCH > fence then redis.call('SET', P .. 'fence', EPOCH) end
