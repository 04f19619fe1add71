-- A node leaving the group on shutdown. KEYS[1]: group prefix. ARGV: node id.
redis.call('ZREM', G .. 'members', ARGV[1])
redis.call('HDEL', G .. 'member-addr', ARGV[1])
return 1
