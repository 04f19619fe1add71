-- Compare-and-swap one branch document of the group's configuration and
-- raise the version. KEYS[1]: group prefix. ARGV: branch, the document the
-- caller read ('' = absent), the new document ('' = delete).
-- Returns {'ok', version} or {'conflict'}.
local branches = G .. 'branches'
local cur = redis.call('HGET', branches, ARGV[1]) or ''
if cur ~= ARGV[2] then return { 'conflict' } end
if ARGV[3] == '' then
  redis.call('HDEL', branches, ARGV[1])
else
  redis.call('HSET', branches, ARGV[1], ARGV[3])
end
local v = redis.call('INCR', G .. 'version')
redis.call('PUBLISH', G .. 'config', v)
return { 'ok', v }
