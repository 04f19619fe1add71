-- Take the group's lease if nobody holds it, with a new fencing epoch.
-- KEYS[1]: group prefix. ARGV: node id, ttl ms, epoch floor (the highest
-- epoch the node has seen: a store that lost its epoch continues above it).
-- Returns {1, epoch, 0} when taken, {0, holder "node|epoch", its PTTL ms}
-- otherwise, so a standby can wake right when the lease would expire.
-- INCR and SET are one script, so no two nodes can ever hold the same epoch.
local holder = redis.call('GET', G .. 'lease')
if holder then return { 0, holder, redis.call('PTTL', G .. 'lease') } end
local epoch = redis.call('INCR', G .. 'epoch')
local floor = tonumber(ARGV[3]) or 0
if epoch <= floor then
  epoch = floor + 1
  redis.call('SET', G .. 'epoch', epoch)
end
redis.call('SET', G .. 'lease', ARGV[1] .. '|' .. epoch, 'PX', ARGV[2])
return { 1, tostring(epoch), 0 }
