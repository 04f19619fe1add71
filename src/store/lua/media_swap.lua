-- Replace the slave group's wanted media manifest with the master's newer
-- one. (Fenced: only the group's current leader.)
-- ARGV (after the fence prelude took the epoch): manifest version (sha256),
-- manifest JSON.
-- Returns {'swapped'} or {'same'} when the group already wants it.
if redis.call('GET', G .. 'media-version') == ARGV[1] then return { 'same' } end
redis.call('SET', G .. 'media-manifest', ARGV[2])
redis.call('SET', G .. 'media-version', ARGV[1])
return { 'swapped' }
