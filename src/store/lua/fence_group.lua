-- Prelude of every leader-only write to group keys. KEYS[1]: group prefix,
-- ARGV[1]: the epoch the caller holds. The write below runs only while that
-- epoch is still the group's; a deposed leader gets {'fenced', current}.
local G = KEYS[1]
local held = tonumber(ARGV[1])
local current = tonumber(redis.call('GET', G .. 'epoch') or '0')
-- Epoch 0 is never a leader's (INCR starts at 1), even before any leader.
if held < 1 or held ~= current then return { 'fenced', tostring(current) } end
