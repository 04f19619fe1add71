-- Take the group's lease if nobody holds it, with a new fencing epoch.
-- KEYS[1]: group prefix. ARGV: node id, ttl ms.
-- Returns {1, epoch, 0} when taken, {0, holder "node|epoch", its PTTL ms}
-- otherwise, so a standby can wake right when the lease would expire.
-- INCR and SET are one script, so no two nodes can ever hold the same epoch.
local holder = redis.call('GET', G .. 'lease')
if holder then return { 0, holder, redis.call('PTTL', G .. 'lease') } end
local epoch = redis.call('INCR', G .. 'epoch')
redis.call('SET', G .. 'lease', ARGV[1] .. '|' .. epoch, 'PX', ARGV[2])
return { 1, tostring(epoch), 0 }
