-- Fencing of a leader-only write to group keys (after group.lua). The
-- caller's epoch is the first argument; it is removed here, so the body sees
-- its own arguments from ARGV[1]. The body runs only while that epoch is
-- still the group's; a deposed leader gets {'fenced', current}.
local EPOCH = tonumber(table.remove(ARGV, 1))
local current_epoch = tonumber(redis.call('GET', G .. 'epoch') or '0')
-- Epoch 0 is never a leader's (INCR starts at 1), even before any leader.
if EPOCH < 1 or EPOCH ~= current_epoch then return { 'fenced', tostring(current_epoch) } end
