-- Replace the slave group's wanted media manifest with the master's newer
-- one. (Runs after fence_group.lua: only the group's current leader.)
-- ARGV: epoch, manifest version (sha256), manifest JSON.
-- Returns {'swapped'} or {'same'} when the group already wants it.
if redis.call('GET', G .. 'media-version') == ARGV[2] then return { 'same' } end
redis.call('SET', G .. 'media-manifest', ARGV[3])
redis.call('SET', G .. 'media-version', ARGV[2])
return { 'swapped' }
