-- A node leaving the group on shutdown. KEYS[1]: group prefix. ARGV: node id.
redis.call('ZREM', KEYS[1] .. 'members', ARGV[1])
redis.call('HDEL', KEYS[1] .. 'member-addr', ARGV[1])
return 1
